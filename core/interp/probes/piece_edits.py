"""Edit which piece the model believes stands on a square, along a class probe's directions.

The chess form of the probe intervention (Karvonen 2024, after Li et al. and Nanda): at chosen
layers, at the last token of the latest move, move the residual stream so that a piece-per-square
probe (one logit per class and square) reads the *target* class on the edited square. The step is
the smallest one along ``w_target − w_other`` that puts the target's logit ``margin`` above the
strongest other class (repeated against whichever class leads next, a few times), so it depends
only on the probe, not on the engine. ``scale`` multiplies the whole step: 0 is no edit, 1 just
flips the probe's reading, more overshoots. The random control moves the same distance along a
random direction.

Success is judged by the engine on the *edited* position: the legal-set error of the model's next
token (the from-square of the next move) — false positives plus false negatives of its top-N
squares, N = the number of squares a legal move starts on — as for Othello
(``interventions.legal_set_error``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.games.base import Game
from core.interp.probes.interventions import EditBatch, legal_set_error, make_batch, run_edits
from core.interp.probes.linear_probes import Probe
from core.models.handle import ModelHandle

MARGIN = 2.0
ROUNDS = 4  # steps against the leading other class; two almost always suffice


def edit_vectors(x: torch.Tensor, probe: Probe, squares: np.ndarray, targets: np.ndarray, margin: float = MARGIN) -> torch.Tensor:
    """The scale-1 edit ``(B, d_model)`` making ``probe`` read class ``targets[i]`` on ``squares[i]``."""
    d = probe.weight.shape[0]
    n_classes = probe.weight.shape[-1]
    w = probe.weight.reshape(d, -1, n_classes)[:, torch.as_tensor(squares)].permute(1, 0, 2)  # (B, d, C)
    b = probe.bias.reshape(-1, n_classes)[torch.as_tensor(squares)]  # (B, C)
    target = torch.as_tensor(targets, dtype=torch.long)
    rows = torch.arange(len(target))
    delta = torch.zeros_like(x)
    for _ in range(ROUNDS):
        logits = torch.einsum("bd,bdc->bc", x + delta, w) + b
        others = logits.clone()
        others[rows, target] = -torch.inf
        rival = others.argmax(-1)
        gap = logits[rows, target] - logits[rows, rival]
        need = (margin - gap).clamp(min=0)
        if not bool((need > 1e-6).any()):
            break
        v = w[rows, :, target] - w[rows, :, rival]  # (B, d)
        delta = delta + (need / (v * v).sum(-1).clamp(min=1e-12))[:, None] * v
    return delta


def run_edited(
    handle: ModelHandle, probes: dict[int, Probe], batch: EditBatch, layers: list[int], scale: float, random_seed: int | None = None, readings: dict | None = None
) -> np.ndarray:
    """Next-token probabilities per square ``(B, 64)`` with the piece edit at ``layers``.

    ``readings``, if given, receives ``layer -> (before, after)``: the probe's class on each row's
    edited square at that layer, as the run met it (earlier edits included) and as it left it.
    """

    def record(layer: int, x: torch.Tensor, x_edited: torch.Tensor) -> None:
        readings[layer] = (_classes(probes[layer], x, batch.squares), _classes(probes[layer], x_edited, batch.squares))

    edit = lambda layer, x: edit_vectors(x, probes[layer], batch.squares, batch.targets)  # noqa: E731
    return run_edits(handle, batch, layers, scale, edit, random_seed, after=record if readings is not None else None)


def _classes(probe: Probe, x: torch.Tensor, squares: np.ndarray) -> np.ndarray:
    """The probe's class on each row's square ``(B,)``."""
    n_classes = probe.weight.shape[-1]
    logits = probe.logits(x).reshape(len(x), -1, n_classes)
    return logits[torch.arange(len(x)), torch.as_tensor(squares)].argmax(-1).numpy()


@dataclass
class PieceEdit:
    """One edit of one position, with the engine's view of the edited position."""

    board: np.ndarray  # (8, 8) the real board
    edited: np.ndarray  # (8, 8) the board the edit asks the model to believe
    legal_real: np.ndarray  # bool (64,) squares a legal move starts on
    legal_edited: np.ndarray  # bool (64,) the same on the edited board
    probs_clean: np.ndarray  # (64,) next-token probability per square
    probs_edited: np.ndarray
    readings: dict[int, tuple[int, int]]  # layer -> the probe's class on the square before / after the edit there
    error_clean: int  # legal-set error of the unedited predictions against the edited board
    error_edited: int  # ... of the edited predictions
    error_clean_vs_real: int  # sanity: the unedited predictions against the real board
    error_random: int  # the control: an edit of the same size along a random direction


def checked_edit(handle: ModelHandle, probes: dict[int, Probe], moves: tuple[int, ...], square: int, value: int, layers: list[int]):
    """What every piece edit starts from: ``(moves fitted to the context, their state, the
    edited board, its legal from-squares)``; ``ValueError`` saying why an edit cannot be made."""
    game = handle.game
    if not moves:
        raise ValueError("play at least one move before editing the model's board")
    missing = [layer for layer in layers if layer not in probes]
    if missing or not layers:
        raise ValueError(f"no probe for layer(s) {missing or layers}")
    moves = game.fit_moves(moves)
    edited, legal_edited = game.edit_position(moves, square, value)
    return moves, game.state(moves), edited, legal_edited


def edit_piece(handle: ModelHandle, probes: dict[int, Probe], moves: tuple[int, ...], square: int, value: int, layers: list[int], scale: float = 1.0) -> PieceEdit:
    """Make the model believe ``value`` (signed piece type, 0 = empty) stands on ``square``."""
    game = handle.game
    moves, state, edited, legal_edited = checked_edit(handle, probes, moves, square, value, layers)
    target = value + 6  # the piece probe's class
    batch = make_batch([moves], [square], [target], game)
    clean = run_edited(handle, probes, batch, layers, 0.0)[0]
    readings: dict = {}
    after = run_edited(handle, probes, batch, layers, scale, readings=readings)[0]
    random = run_edited(handle, probes, batch, layers, scale, random_seed=0)[0]
    return PieceEdit(
        board=state.board, edited=edited, legal_real=state.legal, legal_edited=legal_edited,
        probs_clean=clean, probs_edited=after, readings={layer: (int(b[0]), int(a[0])) for layer, (b, a) in sorted(readings.items())},
        error_clean=int(legal_set_error(clean[None], legal_edited[None])[0]),
        error_edited=int(legal_set_error(after[None], legal_edited[None])[0]),
        error_clean_vs_real=int(legal_set_error(clean[None], state.legal[None])[0]),
        error_random=int(legal_set_error(random[None], legal_edited[None])[0]),
    )


def removal_batch(examples, game: Game) -> tuple[EditBatch, np.ndarray]:
    """The batch and edited legal sets for ``game.edit_examples`` (one piece removed each)."""
    batch = make_batch([e[0] for e in examples], np.array([e[1] for e in examples]), np.full(len(examples), 6), game)  # class 6: empty
    return batch, np.stack([e[3] for e in examples])
