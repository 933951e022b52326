"""SAEs on a chess model: trained on every token, indexed where moves end, scored on Karvonen's
chess board properties, browsed on the SAE page."""

from __future__ import annotations

import numpy as np
import pytest

from core.games.chess import rules as C
from core.interp.sae import features as F
from core.interp.shared import unit_index
from core.interp.sae.metrics import board_scores, sae_metrics
from core.interp.sae.store import list_saes
from core.models.registry import load_model, randomly_initialised
from core.train.sae import SAETrainConfig, train_sae
from tests.test_chess_interventions import CHESS

pytestmark = pytest.mark.skipif(CHESS is None, reason="no bundled chess model")
HOOK = "blocks.1.hook_resid_post"


@pytest.fixture(scope="module")
def handle():
    return load_model(CHESS)


@pytest.fixture(scope="module")
def sae(handle):
    cfg = SAETrainConfig(hook=HOOK, d_sae=64, k=8, lr=2e-3, total_tokens=20_480, batch_size=512, buffer_tokens=8192, games_per_refill=40)
    trained, _ = train_sae(handle, cfg)
    return trained


def test_chess_sae_metrics_count_every_token(handle, sae):
    metrics = sae_metrics(handle, sae, HOOK, n_games=6)
    games = handle.game.random_games(6, seed=3_000_033)
    tokens = handle.game.batch_tokens(games)
    assert metrics["positions"] == int((tokens != handle.game.pad_token).sum())
    assert 0 < metrics["fvu"] < 1 and metrics["l0"] <= 8 + 1e-6
    assert metrics["ce_clean"] < metrics["ce_sae"] < metrics["ce_zero_ablation"]


def test_chess_index_examples_mark_the_move_just_played(handle, sae):
    index = F.build_index(handle, sae, HOOK, n_games=12)
    assert index.n_positions == int((handle.game.move_positions(index.games) >= 0).sum())  # where each move ends
    feature = int(np.argmax(np.diff(index.ptr)))
    for e in unit_index.top_examples(index, feature, k=5):
        move = e.moves[-1]
        assert e.last_move == tuple(sorted({move % 64, (move // 64) % 64}))
        board = C.board_after(e.moves)
        for square in range(64):
            piece = board.piece_at(square)
            value = 0 if piece is None else piece.piece_type * (1 if piece.color else -1)
            assert e.board.reshape(-1)[square] == value
    assert len(index.property_names) == 13 * 64 + 64 + 6  # pieces, legal destinations, check, castling (3), en passant, a pin
    from core.interp.shared.predictions import predict

    clean, spliced = predict(handle, handle.game.state(e.moves)).probs, F.spliced_probs(handle, sae, HOOK, e.moves)
    assert clean.shape == spliced.shape == (64,) and 0.99 < clean.sum() <= 1 + 1e-5 and 0 < spliced.sum() <= 1 + 1e-5
    assert not np.allclose(clean, spliced)  # the reconstruction is not exact


def test_chess_board_scores_have_the_published_reconstruction_beside_baselines(handle, sae):
    scores = board_scores(handle, sae, HOOK, n_games=8, random_handle=randomly_initialised(handle))
    assert set(scores) == {"sae_features", "mlp_neurons", "random_init_neurons"}
    for row in scores.values():
        assert 0 <= row["coverage"] <= 1 and 0 <= row["board_reconstruction_paper"] <= 1 and 0 <= row["board_reconstruction"] <= 1


def test_class_cosines_pick_the_most_aligned_classes(handle):
    """A direction built from one class's probe weight has cosine 1 with it to float32's rounding
    of a normalised d_model-long product (a few u; 1e-5 is ~160 u)."""
    from core.interp.probes import linear_probes as P

    from core.interp.shared import board_targets
    probes = P.load_probe_set(P.PROBE_ROOT / CHESS, "piece", handle.cfg.d_model, 8)
    weight = next(iter(probes.values())).weight
    classes = list(board_targets.targets_for(handle.game)["piece"])
    direction = weight[:, 3, 4, 6 + 2] - weight[:, 3, 4].mean(-1)  # "white knight on e4" itself
    cos = F.class_cosines(direction, weight, classes, k=2)
    assert next(iter(cos)) == "white knight" and np.isclose(cos["white knight"][3 * 8 + 4], 1.0, atol=1e-5)


@pytest.mark.skipif(CHESS is None or not list_saes(CHESS), reason="no bundled chess SAE")
def test_sae_browser_serves_the_bundled_chess_sae():
    from tests.test_board_player_page import button, open_page

    at = open_page("pages/sae_browser.py", model=CHESS, moves="e2e4e7e5g1f3")
    assert not at.error and not at.exception, [e.value for e in at.error]
    assert len(at.get("plotly_chart")) >= 8
    assert any("the square the next move starts on" in m.value for m in at.markdown)
    assert "board reconstruction (paper)" in at.dataframe[0].value.columns
    assert any("piece probe's class directions" in m.value for m in at.markdown)
    active = [b for b in at.button if b.label.startswith("#")]
    assert active
    button(at, "Random move").click().run()
    assert len(at.session_state["moves"]) == 4 and not at.exception
