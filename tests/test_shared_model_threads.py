"""Sixteen browser sessions at once on one shared model: every analysis gives exactly its
sequential result, and no hook is left attached (the app's cached models are shared)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from core.interp.probes import interventions as I
from core.interp.patching import sweeps as PT
from core.interp.probes import piece_edits as E
from core.interp.probes import linear_probes as P
from core.interp.sae import features as F
from core.interp.shared.predictions import predict
from core.interp.sae.store import list_saes, load_sae
from core.models.registry import list_models, load_model

OTHELLO = "othello8"
CHESS = next((s.name for s in list_models() if s.source == "bundled" and s.game == "chess"), None)
pytestmark = pytest.mark.skipif(CHESS is None or not list_saes(OTHELLO), reason="needs the bundled othello8 SAE and a chess model")


def no_hooks(handle) -> bool:
    return all(not hp._forward_hooks and not hp._backward_hooks for hp in handle.model.hook_dict.values())


def test_sixteen_threads_equal_sequential_results_and_leave_no_hook():
    othello, chess_handle = load_model(OTHELLO), load_model(CHESS)
    game = othello.game
    games = game.random_games(8, seed=21)
    entry = list_saes(OTHELLO)[0]
    sae = load_sae(entry.folder, d_in=othello.hook_width(entry.hook))
    mte = {p.meta["layer"]: p for p in P.load_probe_set(P.PROBE_ROOT / OTHELLO, "mine_theirs_empty", othello.cfg.d_model, 8).values()}
    pieces = {p.meta["layer"]: p for p in P.load_probe_set(P.PROBE_ROOT / CHESS, "piece", chess_handle.cfg.d_model, 8).values()}
    chess_examples = chess_handle.game.edit_examples(4, seed=5)

    def moves(i: int) -> tuple[int, ...]:
        return tuple(int(m) for m in games[i % len(games), : 10 + i])

    def job(i: int) -> np.ndarray:
        kind = i % 5
        if kind == 0:
            return predict(othello, game.state(moves(i))).probs
        if kind == 1:
            state = game.state(moves(i))
            square = int(np.flatnonzero(state.board.reshape(-1))[0])
            return I.intervene(othello, mte, moves(i), square, "theirs", [3, 4], 2.0).probs_edited
        if kind == 2:
            return F.spliced_probs(othello, sae, entry.hook, moves(i))
        if kind == 3:
            clean_moves, corrupted_moves, _ = PT.corrupt_game(moves(i)[:8], 2, next(m for m in game.state(moves(i)[:2]).legal_moves if m != moves(i)[2]), game)
            clean = torch.from_numpy(game.game_tokens(clean_moves)[None])
            corrupted = torch.from_numpy(game.game_tokens(corrupted_moves)[None])
            target = int(clean[0, -1])
            return PT.act_patch_block_every(othello, corrupted, clean, lambda logits: logits[:, -2].log_softmax(-1)[:, target]).numpy()
        example = chess_examples[i % len(chess_examples)]
        return E.edit_piece(chess_handle, pieces, example[0], example[1], 0, [4, 5], 4.0).probs_edited

    expected = [job(i) for i in range(16)]
    results: dict[int, list[np.ndarray]] = {i: [] for i in range(16)}
    errors: list[BaseException] = []
    start = threading.Barrier(16)

    def worker(i: int) -> None:
        try:
            start.wait()
            for _ in range(2):
                results[i].append(job(i))
        except BaseException as exc:  # noqa: BLE001 - reported below with the thread's number
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for i in range(16):
        for got in results[i]:
            np.testing.assert_array_equal(got, expected[i], err_msg=f"thread {i} (job kind {i % 5}) differs")
    # the edits and splices really change the predictions (the comparison above can fail) ...
    plain = predict(othello, game.state(moves(1))).probs
    assert not np.array_equal(plain, expected[1]) and not np.array_equal(predict(othello, game.state(moves(2))).probs, expected[2])
    # ... and both shared models are back to their plain selves
    assert no_hooks(othello) and no_hooks(chess_handle)
    assert np.array_equal(predict(othello, game.state(moves(0))).probs, expected[0])
