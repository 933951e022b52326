"""Games from a PGN file, read by python-chess, with a reason for every game left out."""

from __future__ import annotations

import io
import re

import chess.pgn

from core.games.chess import rules as C


def read_pgn_file(text: str, limit: int = 10_000, progress=None) -> tuple[list[tuple[int, ...]], list[tuple[int, str]], list[dict[str, str]]]:
    """A PGN file, read by python-chess: ``(games, skipped, headers)``. A game python-chess
    reports errors for, or one that does not start from the initial position, is skipped with
    the reason (its number in the file); each kept game's headers are kept (``WhiteElo``…)."""
    class QuietBuilder(chess.pgn.GameBuilder):
        def handle_error(self, error: Exception) -> None:  # kept on the game, not logged: the skip list reports it
            self.game.errors.append(error)

    games, skipped, headers = [], [], []
    stream, number = io.StringIO(text), 0
    while True:
        try:
            game = chess.pgn.read_game(stream, Visitor=QuietBuilder)
        except (ValueError, KeyError, IndexError) as exc:  # a header or movetext python-chess cannot take at all
            number += 1
            skipped.append((number, f"unreadable ({type(exc).__name__}: {str(exc)[:100]})"))
            continue
        if game is None:
            break
        number += 1
        if len(games) >= limit:
            skipped.append((number, f"past the first {limit:,} games"))
            break
        if game.errors:  # "illegal san: 'Qxf7' in <FEN>": the move, without the position
            skipped.append((number, re.sub(r" in \S+/\S+ [wb] .*$", "", str(game.errors[0]))[:160]))
            continue
        if game.headers.get("SetUp") == "1" or "FEN" in game.headers:
            skipped.append((number, "starts from a set-up position, not the initial one"))
            continue
        moves = tuple(C.encode_move(m) for m in game.mainline_moves())
        if not moves:
            skipped.append((number, "no moves"))
            continue
        games.append(moves)
        headers.append({k: str(v)[:100] for k, v in game.headers.items()})
        if progress and number % 100 == 0:
            progress(f"reading games: {number:,} read", min(stream.tell() / max(len(text), 1), 1.0))
    return games, skipped, headers
