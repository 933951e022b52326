"""The game plug-in interface: no game module outside core/games, chess tokens, move probabilities."""

from __future__ import annotations

import json
import re
from pathlib import Path

import chess
import numpy as np
import pytest
import torch

from core.games.chess import rules as C
from core.games.registry import get_game
from core.interp.shared.legality import evaluate_legality
from core.interp.shared.predictions import predict, top_k
from core.models.convert import build_hooked_transformer
from core.models.handle import ModelHandle, ModelInfo

ROOT = Path(__file__).resolve().parents[1]
GAME_MODULE = re.compile(r"^\s*(from|import)\s+core\.games(\.(othello|chess|play|othello_game|chess_game|chess_tokens)\b|\s+import\s+.*\b(othello|chess|play)\b)", re.M)


def test_interp_viz_ui_and_pages_import_no_game_module():
    files = [*ROOT.glob("core/interp/**/*.py"), *ROOT.glob("core/viz/*.py"), *ROOT.glob("ui/*.py"), ROOT / "app.py", *ROOT.glob("pages/*.py")]
    assert len(files) > 15
    offenders = [f"{f.relative_to(ROOT)}: {m.group(0).strip()}" for f in files for m in GAME_MODULE.finditer(f.read_text())]
    assert not offenders, offenders
    # The pattern does catch an import of a game module.
    assert GAME_MODULE.search("from core.games import othello\n") and GAME_MODULE.search("import core.games.chess\n")


def test_uci_vocabulary_is_the_published_one():
    game = get_game("chess")
    shared = ROOT.parent / "shared" / "data" / "chess_vocabularies.json"
    if shared.exists():
        assert list(game.tokenizer.vocab) == json.loads(shared.read_text())["uci-squares"]["tokens"]
    assert game.d_vocab == 77 and game.tokenizer.vocab[game.square_token(chess.E4)] == "e4"
    moves = C.parse_moves("e4 e5 Nf3")
    assert game.tokenizer.decode(game.game_tokens(moves)) == "<s> e2 e4 e7 e5 g1 f3"
    promo = C.parse_moves("a4 b5 axb5 a6 bxa6 Bb7 axb7 Nc6 bxa8=Q")
    assert game.tokenizer.decode(game.game_tokens(promo)).endswith("b7 a8 q")


@pytest.mark.parametrize("name, size, tokenizer", [("othello", 8, ""), ("othello", 6, ""), ("chess", 8, "uci-squares"), ("chess", 8, "pgn-chars")])
def test_token_labels_hold_nothing_a_chart_reads_as_html(name, size, tokenizer):
    """Charts (patching maps, the lens) show these labels as they are; plotly reads "<s>" as a
    strike-through tag and swallows it."""
    game = get_game(name, size, tokenizer) if tokenizer else get_game(name, size)
    labels = game.token_labels(tuple(int(m) for m in game.random_games(1, seed=2)[0][:6] if m >= 0))
    assert labels and not [t for t in labels if re.search(r"[<>&]", t)], labels


def reference_weights(moves: list[int], game) -> np.ndarray:
    """The random player's next-token weights, token by token, with python-chess."""
    tok = game.tokenizer
    rows = []
    board = chess.Board()
    for code in moves + [None]:
        legal = list(board.legal_moves)
        w = np.zeros(tok.d_vocab, dtype=np.float32)
        for m in legal:
            w[tok.square_token[m.from_square]] += 1
        rows.append(w)
        if code is None or not legal:
            break
        move = C.decode_move(code)
        w = np.zeros(tok.d_vocab, dtype=np.float32)
        for m in legal:
            if m.from_square == move.from_square:
                w[tok.square_token[m.to_square]] += 1
        rows.append(w)
        if move.promotion:
            w = np.zeros(tok.d_vocab, dtype=np.float32)
            w[tok.promo_token[list(C.PROMOTIONS)]] = 1
            rows.append(w)
        board.push(move)
        if board.is_game_over() or board.is_fifty_moves() or board.is_repetition(3):
            rows.append(np.zeros(tok.d_vocab, dtype=np.float32))
            break
    return np.array(rows)


def test_token_batch_weights_match_python_chess_token_by_token():
    game = get_game("chess", n_ctx=200)
    games = C.random_games(20, 150, seed=9)
    promo = C.parse_moves("a4 b5 axb5 a6 bxa6 Bb7 axb7 Nc6 bxa8=N")
    batch = game.token_batch(np.vstack([games, np.pad(np.array([promo]), ((0, 0), (0, 150 - len(promo))), constant_values=-1)]))
    for g in range(len(games) + 1):
        moves = [int(m) for m in (games[g] if g < len(games) else promo) if m >= 0]
        ref = reference_weights(moves, game)[: game.n_ctx]
        assert np.array_equal(batch.weights[g, : len(ref)], ref), g
        assert not batch.weights[g, len(ref) :].any()
    kinds = batch.kind[-1, : len(game.game_tokens(promo)) - 1]
    assert list(kinds[-3:]) == [0, 1, 2]  # predicting b7, a8, then the promotion letter


@pytest.fixture(scope="module")
def tiny_chess() -> ModelHandle:
    torch.manual_seed(0)
    config = dict(n_layers=2, d_model=32, d_head=8, n_heads=4, d_mlp=64, d_vocab=77, n_ctx=256, act_fn="gelu", normalization_type="LN")
    return ModelHandle(build_hooked_transformer(config), ModelInfo("tiny-chess", "chess", 8, {}, "test", "uci-squares"))


def move_logprob(model, prefix: list[int], move_tokens: list[int]) -> float:
    tokens = torch.tensor([prefix + move_tokens])
    with torch.no_grad():
        logp = model(tokens).log_softmax(-1)[0]
    return float(sum(logp[len(prefix) - 1 + i, t] for i, t in enumerate(move_tokens)))


def test_move_probability_is_the_product_of_token_probabilities(tiny_chess):
    """A move's probability is the product of its tokens' probabilities, from the batched rows pass
    against a plain forward: relative error = the absolute error of the summed log-
    probabilities, a few u of logits of order 10 (~1e-5 at most for these models; rel 1e-4). The
    legal mass is a float64 sum of the same probabilities (``approx``'s 1e-6 relative)."""
    game = tiny_chess.game
    for text in ("e4 e5 Nf3", "a4 b5 axb5 a6 bxa6 Bb7 axb7 Nc6", ""):
        state = game.state(C.parse_moves(text))
        pred = predict(tiny_chess, state)
        assert set(state.legal_moves) <= set(pred.move_probs)
        prefix = list(game.game_tokens(state.moves))
        for move in state.legal_moves:
            direct = np.exp(move_logprob(tiny_chess.model, prefix, game.move_tokens(move)))
            assert pred.move_probs[move] == pytest.approx(direct, rel=1e-4, abs=1e-9)
        assert pred.legal_move_mass == pytest.approx(sum(pred.move_probs[m] for m in state.legal_moves))
        rows = top_k(pred, state.legal_moves, game, k=10)
        assert len(rows) == 10 and rows[0]["probability"] >= rows[-1]["probability"]
        assert {r["legal"] for r in rows} <= {True, False}
        assert len(pred.history_top1_legal) == len(state.moves)


def test_legality_is_reported_per_token_kind(tiny_chess):
    """The overall rate is the position-weighted mean of the per-kind rates: float64 arithmetic on
    counts (``approx``'s 1e-6 relative)."""
    game = tiny_chess.game
    games = game.random_games(6, seed=1)
    stats = evaluate_legality(tiny_chess.forward, games, game)
    assert set(stats["by_kind"]) == {"from", "to", "promotion"}
    total = sum(v["positions"] for v in stats["by_kind"].values())
    assert total == stats["positions"] > 6 * 200
    weighted = sum(v["top1_legal"] * v["positions"] for v in stats["by_kind"].values()) / total
    assert weighted == pytest.approx(stats["top1_legal"])


@pytest.mark.parametrize("size", [4, 6, 8])
def test_the_othello_move_box_suggests_a_legal_opening_of_its_size(size):
    """On 6×6, d3 is a centre square: the placeholder's moves are played, in all three forms."""
    game = get_game("othello", size)
    labels, compact, published = (part.rstrip(" …") for part in game.move_placeholder.split("  ·  "))
    moves = game.parse_moves(labels)
    game.state(tuple(moves))
    assert game.parse_moves(compact) == moves and game.parse_moves(published, notation="published") == moves[:2]
