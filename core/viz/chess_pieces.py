"""Chess pieces drawn as vector outlines (plotly path shapes), so no font or image is needed.

Each piece is a closed outline in a unit square (x right, y up, the piece standing on y = 0.12),
made of straight segments and circles; ``piece_paths`` places them on board squares as SVG path
strings in data coordinates. Shapes do not catch clicks: the square markers under them do.
"""

from __future__ import annotations

import math

import numpy as np

Outline = list[tuple[float, float]]


def _circle(cx: float, cy: float, r: float, n: int = 18) -> Outline:
    return [(cx + r * math.cos(2 * math.pi * i / n), cy + r * math.sin(2 * math.pi * i / n)) for i in range(n)]


def _base(top: float = 0.24, half: float = 0.3) -> Outline:
    return [(0.5 - half, 0.12), (0.5 + half, 0.12), (0.5 + half, top), (0.5 - half, top)]


# Each piece: a list of outlines (drawn filled, one path each).
OUTLINES: dict[int, list[Outline]] = {
    1: [  # pawn: base, body, head
        _base(0.22, 0.24),
        [(0.33, 0.22), (0.67, 0.22), (0.58, 0.52), (0.42, 0.52)],
        _circle(0.5, 0.6, 0.12),
    ],
    2: [  # knight: base and a horse head looking left
        _base(),
        [(0.3, 0.24), (0.74, 0.24), (0.74, 0.5), (0.68, 0.72), (0.56, 0.86), (0.5, 0.92), (0.46, 0.82),
         (0.3, 0.7), (0.2, 0.56), (0.26, 0.5), (0.4, 0.56), (0.48, 0.5), (0.36, 0.36)],
    ],
    3: [  # bishop: base, mitre, ball on top
        _base(),
        [(0.36, 0.24), (0.64, 0.24), (0.62, 0.46), (0.66, 0.6), (0.5, 0.8), (0.34, 0.6), (0.38, 0.46)],
        _circle(0.5, 0.85, 0.055, 10),
    ],
    4: [  # rook: base, tower, battlements
        _base(),
        [(0.34, 0.24), (0.66, 0.24), (0.64, 0.64), (0.7, 0.64), (0.7, 0.84), (0.6, 0.84), (0.6, 0.76), (0.55, 0.76),
         (0.55, 0.84), (0.45, 0.84), (0.45, 0.76), (0.4, 0.76), (0.4, 0.84), (0.3, 0.84), (0.3, 0.64), (0.36, 0.64)],
    ],
    5: [  # queen: base, crown with five points
        _base(),
        [(0.3, 0.24), (0.7, 0.24), (0.82, 0.74), (0.68, 0.52), (0.62, 0.8), (0.5, 0.56), (0.38, 0.8), (0.32, 0.52), (0.18, 0.74)],
        _circle(0.5, 0.6, 0.045, 8),
    ],
    6: [  # king: base, body, cross
        _base(),
        [(0.3, 0.24), (0.7, 0.24), (0.76, 0.58), (0.56, 0.66), (0.44, 0.66), (0.24, 0.58)],
        [(0.46, 0.66), (0.54, 0.66), (0.54, 0.76), (0.62, 0.76), (0.62, 0.83), (0.54, 0.83), (0.54, 0.92),
         (0.46, 0.92), (0.46, 0.83), (0.38, 0.83), (0.38, 0.76), (0.46, 0.76)],
    ],
}


def _path(outline: Outline, x0: float, y0: float, y_sign: float) -> str:
    """Outline in the unit square -> SVG path for the square centred at (x0, y0)."""
    pts = [(x0 - 0.5 + x, y0 + y_sign * (y - 0.5)) for x, y in outline]
    return "M" + "L".join(f"{x:.2f},{y:.2f}" for x, y in pts) + "Z"  # 1/100 of a square: finer than any board here draws


def piece_shapes(board: np.ndarray, rank1_bottom: bool = True, opacity: np.ndarray | None = None, offset: tuple[float, float] = (0.0, 0.0)) -> list[dict]:
    """Plotly layout shapes for every piece of an ``int8 (8, 8)`` board (signed piece types).

    Board cell ``(row, col)`` is drawn at ``x = col, y = row``; with ``rank1_bottom`` the y axis
    runs upward, so outlines keep their orientation; ``offset`` moves the board (boards side by side
    in one plot). Outlines of the same part (base, body, top)
    and look are one path of several closed pieces: a handful of shapes per board, not one per
    outline (a grid of 21 boards had ~1,500 shapes to copy and send on every run). Parts are
    drawn in order, so a piece's top still covers its body's outline, as before.
    """
    return boards_piece_shapes([(board, offset)], rank1_bottom, opacity)


def boards_piece_shapes(boards: list[tuple[np.ndarray, tuple[float, float]]], rank1_bottom: bool = True, opacity: np.ndarray | None = None) -> list[dict]:
    """``piece_shapes`` of several boards, each at its offset, as one handful of shapes for them
    all: a grid of 21 boards is ~6 paths, not ~6 a board (a browser lays out each shape apart)."""
    groups: dict[tuple[int, bool, float], list[str]] = {}
    for board, offset in boards:
        flat = board.reshape(-1)
        size = board.shape[1]
        for square in np.flatnonzero(flat):
            value = int(flat[square])
            row, col = divmod(int(square), size)
            alpha = 1.0 if opacity is None else round(float(np.clip(opacity[square], 0.15, 1.0)), 2)
            for part, outline in enumerate(OUTLINES[abs(value)]):
                groups.setdefault((part, value > 0, alpha), []).append(_path(outline, col + offset[0], row + offset[1], 1.0 if rank1_bottom else -1.0))
    return [
        dict(
            type="path", path=" ".join(paths), layer="above", fillcolor="#fdfdfd" if white else "#1b1b1b",
            line=dict(color="#1b1b1b" if white else "#e8e8e8", width=1.2), opacity=alpha,
        )
        for (_, white, alpha), paths in sorted(groups.items(), key=lambda item: item[0][0])
    ]
