"""A researcher's own games: PGN (python-chess) and Othello game files become a corpus, malformed
games skipped and counted with the reason."""

from __future__ import annotations

from pathlib import Path

import chess
import chess.pgn
import numpy as np
import pytest

from core.game_corpus import GameFileError, cached_corpus, read_corpus
from core.games.registry import get_game

ROOT = Path(__file__).resolve().parents[1]
CHESS_SAMPLE = ROOT / "assets" / "corpora" / "chess_random_vs_greedy.pgn"
OTHELLO_SAMPLE = ROOT / "assets" / "corpora" / "othello_random_vs_greedy.txt"
MALFORMED = [
    '[Event "bad move"]\n\n1. e4 e5 2. Qxf7 Nc6 *\n',  # an illegal move
    '[Event "set-up"]\n[SetUp "1"]\n[FEN "8/8/8/8/8/8/8/K6k w - - 0 1"]\n\n1. Kb1 *\n',
    '[Event "nonsense"]\n\n1. e4 zz9 2. Nf3 *\n',
]


def test_a_thousand_game_pgn_with_malformed_games_becomes_a_corpus():
    sample = CHESS_SAMPLE.read_text()
    text = "\n\n".join([sample] * 5 + MALFORMED) + "\n"
    corpus = read_corpus(text.encode(), "mine.pgn", get_game("chess", 8, "uci-squares", 256))
    assert corpus.n_games == 1000 and len(corpus.skipped) == 3
    assert "skipped" in corpus.summary() and "set-up" in corpus.summary()
    ratings = corpus.ratings()
    assert set(np.unique(ratings)) == {800.0, 1200.0}
    first = chess.pgn.read_game(open(CHESS_SAMPLE))  # python-chess's own reading of game 1
    codes = [m for m in corpus.games[0] if m >= 0]
    from core.games.chess.records import decode_move

    assert [decode_move(int(c)) for c in codes] == list(first.mainline_moves())[: len(codes)]
    game = get_game("chess", 8, "uci-squares", 256)
    game.state(tuple(int(c) for c in codes[:50]))  # a legal game for the engine too


def test_an_othello_game_file_becomes_a_corpus_and_bad_lines_are_reported():
    game = get_game("othello", 8)
    text = OTHELLO_SAMPLE.read_text() + "d3 d3\nnot moves\n\n"
    corpus = read_corpus(text.encode(), "games.txt", game)
    assert corpus.n_games == 200 and [n for n, _ in corpus.skipped] == [402, 403]
    assert all(game.state(tuple(int(m) for m in row if m >= 0)).is_over for row in corpus.games[:20])


@pytest.mark.parametrize("data, message", [(b"\x00\x01\x02binary", "binary"), (b"nothing here\n", "no readable game"), (b"x" * (64 * 1024 * 1024 + 1), "more than")], ids=["binary", "no-game", "too-big"])
def test_unusable_game_files_are_refused_with_the_reason(data, message):
    with pytest.raises(GameFileError, match=message):
        read_corpus(data, "upload", get_game("othello", 8))


def test_the_same_upload_is_parsed_once():
    game = get_game("othello", 8)
    data = OTHELLO_SAMPLE.read_bytes()
    a, b = cached_corpus(data, "a.txt", game), cached_corpus(data, "b.txt", game)
    assert a.games is b.games  # one parse, shared
    assert (a.name, b.name) == ("a.txt", "b.txt")  # each upload keeps its own name


def test_the_shipped_samples_are_what_their_generator_makes():
    from core.sample_games import chess_games

    assert CHESS_SAMPLE.read_text().startswith(chess_games(3).rstrip("\n") + "\n\n")  # the same seed makes the same first games


def test_an_othello_file_in_the_published_notation_is_read_too():
    """``C2`` style (row letter, column from 0), one game per line, beside a labelled game."""
    game = get_game("othello", 8)
    labelled = read_corpus(OTHELLO_SAMPLE.read_bytes(), "games.txt", game)
    rows = [[int(m) for m in row if m >= 0] for row in labelled.games[:5]]
    published = ["".join(f"{'ABCDEFGH'[m // 8]}{m % 8}" for m in row) for row in rows]
    text = "\n".join(published + [game.format_moves(rows[0])]) + "\n"
    corpus = read_corpus(text.encode(), "published.txt", game)
    assert corpus.n_games == 6 and not corpus.skipped
    assert [[int(m) for m in row if m >= 0] for row in corpus.games] == rows + rows[:1]


def test_one_game_is_one_game_in_words():
    """"1 games of damaged.pgn" read wrong: counts take the noun's number."""
    from core.words import count

    assert (count(1, "game"), count(2000, "game"), count(1, "property", "properties"), count(0, "move")) == ("1 game", "2,000 games", "1 property", "0 moves")
    corpus = read_corpus(b"d3 c5 f6\n", "one.txt", get_game("othello", 8))
    assert corpus.summary() == "one.txt: 1 game"


def test_one_binary_line_costs_that_line_only():
    """A damaged line (NUL bytes) in an Othello games file is skipped with its reason; the rest
    is read. A file that is mostly binary is still refused whole."""
    game = get_game("othello", 8)
    corpus = read_corpus(b"d3 c5 f6\n\x00\x01\xff garbage\nf5 d6 c3\n", "damaged.txt", game)
    assert corpus.n_games == 2 and corpus.skipped == [(2, "binary bytes (NUL) on line 2: left out")]
    assert "1× binary bytes" in corpus.summary()
    with pytest.raises(GameFileError, match="binary file"):
        read_corpus(b"\x00\x01\x02\n\x00\x00\nd3\n", "bin.txt", game)
