"""Figures built from unvalidated dicts (core.viz.fast) are figures plotly itself accepts, and
look as validated ones did (colour scales resolved the way plotly Python reads their names)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from core.games.chess import rules as C
from core.games.registry import get_game
from core.viz.attention import head_grid_thumbnails
from core.viz.board import board_figure
from core.viz.fast import grid_axes, resolve_colorscale
from core.viz.sae import board_grid_figure


def validated(fig: go.Figure) -> go.Figure:
    """plotly's own check of every property (raises on anything it would refuse)."""
    return go.Figure(fig.to_dict())


def othello_board() -> np.ndarray:
    board = np.zeros((8, 8), dtype=np.int8)
    board[3, 3] = board[4, 4] = 1
    board[3, 4] = board[4, 3] = -1
    return board


@pytest.mark.parametrize("scale", ["RdBu", "Blues", "Purples", "Greens", "Viridis"])
def test_named_scales_resolve_as_plotly_python_reads_them(scale):
    """Colour-scale stops are float64 numbers written by two readers of the same definition: equal
    to 1e-12."""
    expected = go.Scatter(marker=dict(colorscale=scale)).marker.colorscale
    ours = resolve_colorscale(scale)
    assert [c for _, c in ours] == [c for _, c in expected]
    np.testing.assert_allclose([p for p, _ in ours], [p for p, _ in expected], atol=1e-12)


def test_othello_board_with_every_option_is_valid_and_keeps_its_values():
    """The figure keeps the values it was given: float64 copies (``assert_allclose``'s 1e-7
    relative)."""
    values = np.linspace(-1, 1, 64)
    fig = board_figure(
        othello_board(), values, legal=np.arange(64) % 5 == 0, outline=3, last_move=5, title="t", colorscale="RdBu", zmin=-1, zmax=1,
        errors=np.arange(64) % 7 == 0, piece_opacity=np.full(64, 0.5), picked=9,
    )
    check = validated(fig)
    np.testing.assert_allclose(np.asarray(fig.data[0].marker.color, dtype=float), values)
    assert check.data[0].marker.colorscale[0][1] == go.Scatter(marker=dict(colorscale="RdBu")).marker.colorscale[0][1]
    assert list(fig.data[0].customdata) == list(range(64))  # a click names its square
    assert check.layout.yaxis.autorange == "reversed" and check.layout.title.text == "t"


def test_chess_board_and_grids_are_valid():
    games, rep = C.random_games_with_replay(2, 20, seed=0)
    style = get_game("chess", tokenizer="uci-squares").board_style
    validated(board_figure(rep.boards[0, 5], None, legal=np.arange(64) < 3, last_move=(12, 28), **style))
    grid = validated(board_grid_figure([rep.boards[0, t] for t in range(5)], [(1, 2)] * 5, [f"move {t}" for t in range(5)], cols=2, matched=4, **style))
    titles = next(t for t in grid.data if t.mode == "text" and list(t.text) == [f"move {t}" for t in range(5)])  # a title per board, one trace
    assert len(titles.x) == 5 and grid.layout.shapes  # pieces as shapes
    othello = validated(board_grid_figure([othello_board()] * 7, [3] * 7, [f"x{i}" for i in range(7)], cols=3, hover=[f"moves {i}" for i in range(7)]))
    hover = next(t for t in othello.data if t.hovertext is not None)
    assert list(hover.hovertext) == [f"x{i}<br>moves {i}" for i in range(7)] and len(hover.x) == 7  # one hover per board, over the whole board
    assert len(othello.data[0].x) == 7 * 64 and len(othello.data) <= 8  # every square in one trace: a few traces, whatever the number of boards


def test_head_grid_is_valid_with_a_label_per_layer_and_head():
    patterns = np.random.default_rng(0).random((3, 4, 10, 10))
    fig = validated(head_grid_thumbnails(patterns, [str(i) for i in range(10)]))
    texts = {a.text for a in fig.layout.annotations}
    assert {"L0", "L2", "H0", "H3"} <= texts and len([t for t in fig.data if t.type == "heatmap"]) == 1
    assert len(set(fig.data[0].x)) == len(fig.data[0].x) and len(set(fig.data[0].y)) == len(fig.data[0].y)  # categories, each its own (gaps too)


@pytest.mark.parametrize("rows, cols", [(1, 1), (6, 8), (3, 7)])
def test_grid_axes_stay_inside_the_figure(rows, cols):
    refs, axes, domains = grid_axes(rows, cols, 0.01, 0.16 / rows + 0.05)
    assert len(refs) == rows * cols == len(domains)
    for x0, x1, y0, y1 in domains:
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1


def test_history_axis_has_the_decimals_its_values_need():
    import numpy as np

    from core.viz.board import history_figure, percent_format

    assert percent_format([0.0, 0.3]) == ".0%" and percent_format([0.0, 0.04]) == ".1%" and percent_format([0.004]) == ".2%"
    assert percent_format([np.nan, 0.0004]) == ".3%" and percent_format([np.nan]) == ".0%"
    fig = history_figure(np.array([1.0, 1.0]), np.array([0.001, 0.003]), ["d3", "c5"], ["c5", "e6"])
    assert fig.layout.yaxis.tickformat == ".2%"  # ticks 0.05 % apart read 0.05%, 0.10%, ... not 0%, 0%, ...


def test_training_summary_says_when_a_run_stopped_early():
    from core.viz.training import training_summary

    done = training_summary({"steps": 8000, "train_config": {"steps": 8000}, "games_seen": 512000, "wall_time_s": 7200})
    assert done == "8,000 steps, 512,000 games, 2.0 h of training."
    early = training_summary({"steps": 3413, "train_config": {"steps": 30000}, "games_seen": 218432, "wall_time_s": 11567.6})
    assert "stopped early, at 3,413 of the 30,000 steps" in early
    assert training_summary({"steps": "x", "train_config": None}).startswith("x steps, ? games")


def test_learning_curve_is_one_line_per_column_on_the_card_models_history():
    import json

    from core.viz.training import learning_curve_figure, learning_curve_table

    card = json.loads(Path("assets/models/chess/card.json").read_text())
    history = [h for h in card["history"] if "top1_legal" in h]
    table = learning_curve_table(history)
    fig = learning_curve_figure(table, "top-1 legal", percent=True)
    assert [t.name for t in fig.data] == list(table.columns) and "all tokens" in table.columns and len(table.columns) > 1  # and each token kind
    assert list(fig.data[0].x) == [h["step"] for h in sorted(history, key=lambda h: h["step"])]
    assert list(fig.data[0].y) == [h["top1_legal"] for h in sorted(history, key=lambda h: h["step"])]
    assert fig.layout.yaxis.tickformat == ".0%" and fig.layout.showlegend
    text = learning_curve_figure(pd.DataFrame({"held-out CE": [3.1, 2.4, float("nan")]}, index=[0, 100, 200]), "nats per token")
    assert list(text.data[0].y) == [3.1, 2.4, None] and not text.layout.showlegend  # a missing value is a gap, one line needs no legend


def test_probe_accuracy_axis_shows_distinct_ticks_on_a_narrow_range():
    from core.viz.board import percent_format
    from core.viz.probes import layer_accuracy_figure

    summary = {"piece": {"hooks": ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"], "accuracy": [0.641, 0.653], "random_accuracy": [0.645, 0.642]}}
    assert layer_accuracy_figure(summary).layout.yaxis.tickformat == ".1%"  # 64 %–65 %: ".0%" printed "65%" on every tick
    assert percent_format([0.2, 0.95]) == ".0%" and percent_format([0.981, 0.985]) == ".2%"


def test_every_bundled_sae_curve_has_one_token_budget_and_the_sae_drawn_apart():
    """The FVU-vs-L0 curve joins only points trained on the same number of activations (the
    SAE's own k among them); the SAE itself, trained longer, is a separate star."""
    import json
    from pathlib import Path

    from core.viz.sae import curve_figure

    cards = [json.loads(p.read_text()) for p in sorted((Path(__file__).resolve().parents[1] / "assets" / "saes").glob("*/*/card.json"))]
    curves = [c for c in cards if c.get("curve")]
    assert curves
    for card in curves:
        line = [p for p in card["curve"] if not p.get("this")]
        own = [p for p in card["curve"] if p.get("this")]
        assert len({p["tokens"] for p in line}) == 1, card["hook"]
        assert card["train_config"]["k"] in {p["k"] for p in line} and len(own) == 1
        fvu = [p["fvu"] for p in sorted(line, key=lambda p: p["k"])]
        assert all(a > b for a, b in zip(fvu, fvu[1:])), fvu  # more active features, less unexplained variance
        fig = curve_figure(card["curve"])
        assert [len(t.x) for t in fig.data] == [len(line), 1] and fig.data[1].marker.symbol == "star"
