"""Chess probe interventions: the edited position from python-chess, the edit itself, scoped hooks."""

from __future__ import annotations

import chess
import numpy as np
import pytest
import torch

from core.games.chess import rules as C
from core.games.registry import get_game
from core.interp.probes import interventions as I
from core.interp.probes import piece_edits as E
from core.interp.probes import linear_probes as P
from core.models.registry import list_models, load_model

CHESS = next((s.name for s in list_models() if s.source == "bundled" and s.game == "chess"), None)
needs_model = pytest.mark.skipif(CHESS is None, reason="no bundled chess model")
GAME = get_game("chess")


def moves_of(text: str) -> tuple[int, ...]:
    return tuple(GAME.parse_moves(text))


def test_edited_position_matches_python_chess():
    moves = moves_of("e4 e5 Nf3 Nc6 Bc4")
    board, legal = GAME.edit_position(moves, chess.C6, 0)  # black's knight removed
    ref = C.board_after(moves)
    ref.remove_piece_at(chess.C6)
    assert board.reshape(-1)[chess.C6] == 0 and board.reshape(-1)[chess.E5] == -1
    assert set(np.flatnonzero(legal)) == {m.from_square for m in ref.legal_moves}
    assert not legal[chess.C6]
    # adding a piece: a white queen on d5 attacks; black's legal moves follow python-chess
    board, legal = GAME.edit_position(moves, chess.D5, 5)
    ref = C.board_after(moves)
    ref.set_piece_at(chess.D5, chess.Piece(chess.QUEEN, chess.WHITE))
    assert set(np.flatnonzero(legal)) == {m.from_square for m in ref.legal_moves}


@pytest.mark.parametrize(
    "square, value, why",
    [
        (chess.E1, 0, "kings"),  # removing a king
        (chess.D4, 6, "kings"),  # adding one
        (chess.A8, 1, "pawn"),  # a pawn on the last rank
        (chess.E7, 4, "just moved would be in check"),  # a white rook beside black's king, black just moved
    ],
)
def test_impossible_edits_say_why(square, value, why):
    with pytest.raises(ValueError, match=why):
        GAME.edit_position(moves_of("e4 f5"), square, value)


def test_edit_may_put_the_side_to_move_in_check():
    board, legal = GAME.edit_position(moves_of("e4 e5"), chess.E2, -5)  # a black queen on e2: white is in check
    assert legal.any() and board.reshape(-1)[chess.E2] == -5


def test_edit_examples_remove_a_movable_piece():
    examples = GAME.edit_examples(12, seed=3)
    assert len(examples) == 12
    for moves, square, value, legal in examples:
        board = C.board_after(moves)
        piece = board.piece_at(square)
        assert piece is not None and piece.color == board.turn and piece.piece_type != chess.KING
        assert value == piece.piece_type * (1 if piece.color else -1)
        assert any(m.from_square == square for m in board.legal_moves) and not legal[square]


@needs_model
def test_edit_makes_the_probe_read_the_target_and_leaves_the_model_clean():
    """The clean probabilities of the edit's batch equal the page's own clean pass (the same
    kernels; 1e-6 at probabilities <= 1 is ~16 u), and the model is left exactly as it was
    (``assert_close``'s defaults on the same inputs)."""
    handle = load_model(CHESS)
    probes = P.load_probe_set(P.PROBE_ROOT / CHESS, "piece", handle.cfg.d_model, 8)
    by_layer = {p.meta["layer"]: p for p in probes.values()}
    moves = moves_of("e4 e5 Nf3 Nc6 Bc4 Nf6")
    layer = 5
    batch = I.make_batch([moves], [chess.F3], [6], handle.game)
    hook = f"blocks.{layer}.hook_resid_post"
    x = handle.activations(batch.tokens, [hook])[hook][0, batch.last[0]].float()
    delta = E.edit_vectors(x[None], by_layer[layer], np.array([chess.F3]), np.array([6]))[0]
    logits = by_layer[layer].logits(x + delta).reshape(64, 13)[chess.F3]
    assert int(logits.argmax()) == 6 and float(logits[6] - logits.topk(2).values[1]) >= E.MARGIN - 1e-3
    before = handle.forward(batch.tokens).clone()
    res = E.edit_piece(handle, by_layer, moves, chess.F3, 0, [layer], scale=1.0)
    assert res.readings[layer][1] == 6  # the probe now reads "empty" on f3
    assert not res.legal_edited[chess.F3] and res.legal_real[chess.F3]
    # scale 0 is the clean model; hooks are gone afterwards
    clean = E.run_edited(handle, by_layer, batch, [layer], 0.0)
    np.testing.assert_allclose(clean[0], res.probs_clean, atol=1e-6)
    torch.testing.assert_close(handle.forward(batch.tokens), before)
    assert not any(hp.fwd_hooks for hp in handle.model.hook_dict.values())


@needs_model
def test_removal_sweep_probe_beats_random_at_large_scale():
    """A small version of ``bench/interventions.py --model chess``: the edit along the probe
    lowers the error against the edited board, a random direction of the same length does not."""
    handle = load_model(CHESS)
    probes = P.load_probe_set(P.PROBE_ROOT / CHESS, "piece", handle.cfg.d_model, 8)
    by_layer = {p.meta["layer"]: p for p in probes.values()}
    batch, legal = E.removal_batch(GAME.edit_examples(40, seed=11), handle.game)
    sweep = I.scale_sweep(handle, by_layer, batch, legal, [4, 5, 6], [0, 8], run=E.run_edited)
    assert sweep["probe"][0] == sweep["random"][0]
    assert sweep["probe"][1] < sweep["probe"][0] < sweep["random"][1]


def test_verdict_says_whether_the_edit_beats_the_random_control():
    from core.interp.probes.interventions import verdict

    assert "the model follows the edited board. The probe edit lowers the legal-move error from 4 to 1; a random edit of the same size gives 5." in verdict(4, 1, 5, 7)
    assert "no better than a random edit" in verdict(4, 3, 2, 7)
    assert "raises the legal-move error from 4 to 12" in verdict(4, 12, 5, 7) and "does not follow" in verdict(4, 12, 5, 7)
    assert "top 7 squares" in verdict(4, 1, 5, 7, unit="squares")
    assert "leaves the legal-move error at 0" in verdict(0, 0, 2, 4) and "fit the edited board already" in verdict(0, 0, 2, 4)


def test_verdict_says_what_changed_before_the_summary():
    """One move dropped and one not yet taken up leaves the legal-move error where it was: the
    verdict says the model follows part of the edit, not that it does not follow."""
    import numpy as np

    from core.interp.probes.interventions import move_changes, verdict

    legal_real, legal_edited = np.array([1, 1, 0, 1, 0], bool), np.array([0, 1, 1, 0, 0], bool)
    before, after = np.array([0.31, 0.5, 0.001, 0.005, 0.1]), np.array([0.004, 0.6, 0.002, 0.004, 0.3])
    changes = move_changes(legal_real, legal_edited, before, after, "abcde".__getitem__)
    assert changes == [("a", False, 0.31, 0.004, "dropped"), ("c", True, 0.001, 0.002, "ignored"), ("d", False, 0.005, 0.004, "already unlikely")]
    text = verdict(2, 2, 2, 2, changes=changes)
    assert text.index("made illegal, the model dropped: a (31.0% → 0.4%)") < text.index("Conclusion")
    assert "made legal, the model did not take up: c (0.1% → 0.2%)" in text and "already unlikely before: d" in text
    assert "follows part of the edit (1 of 2 changes)" in text and "does not follow" not in text
    took = move_changes(legal_real, legal_edited, before, np.array([0.01, 0.5, 0.2, 0.0, 0.1]), "abcde".__getitem__)
    assert [c[4] for c in took] == ["dropped", "took up", "already unlikely"] and "the model follows the edited board" in verdict(2, 0, 2, 2, changes=took)
    assert "random edit of the same size does as well" in verdict(2, 0, 0, 2, changes=took)


def test_removing_the_b1_knight_is_followed_on_the_page():
    """The chess probe viewer's first edit (the b1 knight removed): its probability falls, and the
    verdict says the model dropped it."""
    from tests.test_board_player_page import open_page

    at = open_page("pages/probe_viewer.py", model=CHESS, moves="e2e4e7e5")
    text = next(m.value for m in at.markdown if "Conclusion" in m.value)
    assert "made illegal, the model dropped: b1" in text and "does not follow" not in text, text
