"""Edit the model's belief about one square along probe directions and see its predictions move.

The published recipe: at chosen layers, at the latest position, move the residual stream along the
probe's mine-minus-theirs direction (and the empty-minus-occupied one when emptiness changes) so
the probe reads the target state. ``scale`` 1 moves exactly far enough to mirror the probe's
current confidence (at least ``MIN_MARGIN`` logits) onto the target; 0 is no edit; larger values
overshoot. The random-direction control applies an edit of the same size along a random direction.

Success is measured against the engine: the legal moves of the *edited* board. Legal-set error =
false positives + false negatives of the model's top-N moves, N = number of legal moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from core.games.base import Game
from core.games.registry import as_game
from core.interp.probes.linear_probes import Probe
from core.models.handle import ModelHandle

STATES = ("empty", "mine", "theirs")  # the mine_theirs_empty probe's classes, mine = last mover
MIN_MARGIN = 2.0


def edited_board(board: np.ndarray, mover: int, square: int, target: str) -> np.ndarray:
    """The board with ``square`` set to ``target`` (relative to ``mover``, who made the last move)."""
    value = {"empty": 0, "mine": mover, "theirs": -mover}[target]
    out = board.copy()
    out.reshape(-1)[square] = value
    return out


def legal_set_error(probs: np.ndarray, legal: np.ndarray) -> np.ndarray:
    """False positives + false negatives of the top-N predictions, N = number of legal moves.

    ``probs (..., n_squares)``, ``legal bool (..., n_squares)`` -> ``int (...)``.
    """
    n_legal = legal.sum(-1)
    order = np.argsort(-probs, axis=-1, kind="stable")
    rank = np.argsort(order, axis=-1)
    in_top = rank < n_legal[..., None]
    hits = (in_top & legal).sum(-1)
    return 2 * (n_legal - hits)


def _directions(probe: Probe, squares: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per row: mine-theirs and empty-occupied directions ``(B, d_model)`` and their bias offsets ``(B,)``."""
    size = probe.size
    r, c = squares // size, squares % size
    w = probe.weight[:, r, c, :].permute(1, 0, 2)  # (B, d_model, 3)
    b = probe.bias[r, c, :]  # (B, 3)
    mt = w[..., 1] - w[..., 2]
    mt_b = b[:, 1] - b[:, 2]
    emp = w[..., 0] - 0.5 * (w[..., 1] + w[..., 2])
    emp_b = b[:, 0] - 0.5 * (b[:, 1] + b[:, 2])
    return mt, mt_b, emp, emp_b


def _move_to(x: torch.Tensor, v: torch.Tensor, v_b: torch.Tensor, sign: torch.Tensor, scale: float) -> torch.Tensor:
    """The step along ``v`` that takes the probe's logit difference from ``a`` to ``sign*max(|a|, margin)``, times ``scale``."""
    a = (x * v).sum(-1) + v_b
    goal = sign * a.abs().clamp(min=MIN_MARGIN)
    step = torch.where(sign == 0, torch.zeros_like(a), (goal - a) / (v * v).sum(-1).clamp(min=1e-12))
    return scale * step[:, None] * v


def edit_vectors(x: torch.Tensor, probe: Probe, squares: np.ndarray, targets: np.ndarray) -> torch.Tensor:
    """The scale-1 edit ``(B, d_model)`` for activations ``x (B, d_model)``; targets index ``STATES``."""
    mt, mt_b, emp, emp_b = _directions(probe, squares)
    targets_t = torch.as_tensor(targets)
    empty_sign = torch.where(targets_t == 0, 1.0, -1.0)
    mt_sign = torch.where(targets_t == 1, 1.0, torch.where(targets_t == 2, -1.0, 0.0))
    delta = _move_to(x, emp, emp_b, empty_sign, 1.0)
    return delta + _move_to(x + delta, mt, mt_b, mt_sign, 1.0)


@dataclass
class EditBatch:
    """Model inputs for B positions: each row a game prefix, edited at the last token of its last move."""

    tokens: torch.Tensor  # (B, T) padded after each prefix (causal: padding is never read)
    last: torch.Tensor  # (B,) position of each row's last token
    squares: np.ndarray  # (B,)
    targets: np.ndarray  # (B,) the probe class to write (Othello: an index into STATES)


def make_batch(prefixes: list[tuple[int, ...]], squares, targets, game: Game | int) -> EditBatch:
    game = as_game(game)
    rows = [game.game_tokens(game.fit_moves(p)) for p in prefixes]
    tokens = np.full((len(rows), max(len(r) for r in rows)), game.pad_token, dtype=np.int64)
    for i, r in enumerate(rows):
        tokens[i, : len(r)] = r
    last = torch.tensor([len(r) - 1 for r in rows])
    return EditBatch(torch.from_numpy(tokens), last, np.asarray(squares), np.asarray(targets))


EditFn = Callable[[int, torch.Tensor], torch.Tensor]  # (layer, x (B, d_model)) -> scale-1 edit (B, d_model)


def run_edits(
    handle: ModelHandle, batch: EditBatch, layers: list[int], scale: float, edit: EditFn, random_seed: int | None = None, after: Callable | None = None
) -> np.ndarray:
    """Next-token probabilities per square ``(B, n_squares)`` with ``scale`` times ``edit`` added to
    the residual stream at each row's last token after each of ``layers`` (scoped hooks).

    ``random_seed`` replaces each edit by one of the same norm along a random direction;
    ``after(layer, x, x_edited)`` sees each layer's activations before and after its edit.
    """
    rows = torch.arange(len(batch.last))
    logits = handle.run_with_hooks(batch.tokens, edit_hooks(batch, layers, scale, edit, random_seed, after))[rows, batch.last]
    return square_probs(logits, handle.game)


def edit_hooks(
    batch: EditBatch, layers: list[int], scale: float | list[float], edit: EditFn, random_seed: int | None = None, after: Callable | None = None, random_rows: list[bool] | None = None
) -> list:
    """The forward hooks of ``run_edits``: ``scale`` times ``edit`` added at each row's last token
    after each of ``layers``. Made afresh for every pass, a random control draws the same
    directions each time (a pass that continues the rows sees the same edit).

    ``scale`` may be one per row, and ``random_rows`` says which rows take the random direction
    (default: all of them when ``random_seed`` is given): one batch can hold a position unedited,
    edited and edited at random.
    """
    rows = torch.arange(len(batch.last))
    gen = torch.Generator().manual_seed(random_seed) if random_seed is not None else None
    scale = torch.as_tensor(scale, dtype=torch.float32).reshape(-1, 1)
    random_mask = None if random_rows is None else torch.as_tensor(random_rows, dtype=torch.bool)[:, None]

    def hook_for(layer: int):
        def hook(resid: torch.Tensor, hook) -> torch.Tensor:
            x = resid[rows, batch.last].float().cpu()  # probes and edits live on the CPU
            delta = edit(layer, x)
            if gen is not None:
                r = torch.randn(delta.shape, generator=gen)
                r = r / r.norm(dim=-1, keepdim=True) * delta.norm(dim=-1, keepdim=True)
                delta = r if random_mask is None else torch.where(random_mask, r, delta)
            resid = resid.clone()
            resid[rows, batch.last] = (x + scale * delta).to(resid.device, resid.dtype)
            if after is not None:
                after(layer, x, x + scale * delta)
            return resid

        return hook

    return [(f"blocks.{layer}.hook_resid_post", hook_for(layer)) for layer in layers]


def run_edited(handle: ModelHandle, probes: dict[int, Probe], batch: EditBatch, layers: list[int], scale: float, random_seed: int | None = None) -> np.ndarray:
    """``run_edits`` with the mine/theirs/empty edit of ``edit_vectors``."""
    return run_edits(handle, batch, layers, scale, lambda layer, x: edit_vectors(x, probes[layer], batch.squares, batch.targets), random_seed)


def square_probs(logits: torch.Tensor, game: Game | int) -> np.ndarray:
    """``(B, d_vocab)`` logits -> ``(B, n_squares)`` probabilities per square (squares without a
    token get 0)."""
    game = as_game(game)
    probs = logits.float().softmax(-1).numpy()
    token_square = game.token_square()
    named = np.flatnonzero(token_square >= 0)
    out = np.zeros((len(probs), game.n_squares), dtype=np.float32)
    out[:, token_square[named]] = probs[:, named]
    return out


@dataclass
class Intervention:
    """One edit of one position, with the engine's view of the edited board."""

    board: np.ndarray  # (size, size) the real board
    edited: np.ndarray  # (size, size) the board the edit asks the model to believe
    next_player: int
    legal_real: np.ndarray  # bool (size*size,)
    legal_edited: np.ndarray  # bool (size*size,)
    probs_clean: np.ndarray  # (size*size,)
    probs_edited: np.ndarray  # (size*size,)
    error_clean: int  # legal-set error of the unedited predictions against the edited board
    error_edited: int  # ... of the edited predictions against the edited board
    error_clean_vs_real: int  # sanity: the unedited predictions against the real board
    error_random: int  # the control: an edit of the same size along a random direction


def intervene(handle: ModelHandle, probes: dict[int, Probe], moves: tuple[int, ...], square: int, target: str, layers: list[int], scale: float = 1.0) -> Intervention:
    """Edit the belief about ``square`` after ``moves`` and compare with the engine."""
    game = handle.game
    if not moves:
        raise ValueError("play at least one move before editing the model's board")
    if target not in STATES:
        raise ValueError(f"target must be one of {', '.join(STATES)}")
    missing = [layer for layer in layers if layer not in probes]
    if missing:
        raise ValueError(f"no probe for layer(s) {missing}")
    moves = tuple(moves[: game.n_ctx])
    rep = game.replay(np.array([moves]))
    board, mover, nxt = rep.boards[0, -1], int(rep.mover[0, -1]), int(rep.next_player[0, -1])
    if nxt == 0:
        raise ValueError("the game is over: there is no next move to predict")
    edited = edited_board(board, mover, square, target)
    legal_edited = game.legal_on_board(edited, nxt)
    batch = make_batch([moves], [square], [STATES.index(target)], game)
    clean = run_edited(handle, probes, batch, layers, 0.0)[0]
    after = run_edited(handle, probes, batch, layers, scale)[0]
    random = run_edited(handle, probes, batch, layers, scale, random_seed=0)[0]
    legal_real = rep.legal_next[0, -1]
    return Intervention(
        board=board,
        edited=edited,
        next_player=nxt,
        legal_real=legal_real,
        legal_edited=legal_edited,
        probs_clean=clean,
        probs_edited=after,
        error_clean=int(legal_set_error(clean[None], legal_edited[None])[0]),
        error_edited=int(legal_set_error(after[None], legal_edited[None])[0]),
        error_clean_vs_real=int(legal_set_error(clean[None], legal_real[None])[0]),
        error_random=int(legal_set_error(random[None], legal_edited[None])[0]),
    )


def scale_sweep(
    handle: ModelHandle, probes: dict[int, Probe], batch: EditBatch, legal_edited: np.ndarray, layers: list[int], scales: list[float], seed: int = 0, run=run_edited
) -> dict[str, list[float]]:
    """Mean legal-set error against the edited boards for each scale, probe direction vs random
    (``run``: the edit, ``run_edited`` or a game's own such as ``piece_edits.run_edited``)."""
    out = {"scale": list(scales), "probe": [], "random": []}
    for s in scales:
        out["probe"].append(float(legal_set_error(run(handle, probes, batch, layers, s), legal_edited).mean()))
        out["random"].append(float(legal_set_error(run(handle, probes, batch, layers, s, random_seed=seed), legal_edited).mean()))
    return out


def flip_candidates(rep, t: int, game: int = 0, rules: Game | int = 8) -> np.ndarray:
    """Occupied squares after move ``t`` whose colour flip changes the next player's legal moves
    (and leaves at least one): the edits whose effect the engine can check."""
    nxt = int(rep.next_player[game, t])
    if nxt == 0:
        return np.zeros(0, dtype=int)
    board, mover = rep.boards[game, t], int(rep.mover[game, t])
    flat = board.reshape(-1)
    out = []
    for sq in np.flatnonzero(flat != 0):
        target = "theirs" if flat[sq] == mover else "mine"
        new_legal = as_game(rules).legal_on_board(edited_board(board, mover, int(sq), target), nxt)
        if new_legal.any() and not np.array_equal(new_legal, rep.legal_next[game, t]):
            out.append(int(sq))
    return np.array(out, dtype=int)


def flip_examples(size: Game | int, n: int, seed: int = 0) -> tuple[list[tuple[int, ...]], np.ndarray, np.ndarray, np.ndarray]:
    """``n`` positions from random games, each with an occupied square whose colour flip changes
    the next player's legal moves: ``(prefixes, squares, targets, legal_edited)``.

    This is the published test: flip one piece mine <-> theirs and check the predictions follow.
    """
    rng = np.random.default_rng(seed)
    game = as_game(size)
    games = game.random_games(4 * n, seed=seed)[:, : game.n_ctx]
    rep = game.replay(games)
    prefixes, squares, targets, legal = [], [], [], []
    for g in range(len(games)):
        if len(prefixes) == n:
            break
        t = int(rng.integers(4, max(5, rep.lengths[g] - 4)))
        candidates = flip_candidates(rep, t, g, game)
        if not len(candidates):
            continue
        sq = int(rng.choice(candidates))
        board, mover = rep.boards[g, t], int(rep.mover[g, t])
        target = "theirs" if board.reshape(-1)[sq] == mover else "mine"
        prefixes.append(tuple(int(m) for m in games[g, : t + 1]))
        squares.append(sq)
        targets.append(STATES.index(target))
        legal.append(game.legal_on_board(edited_board(board, mover, sq, target), int(rep.next_player[g, t])))
    return prefixes, np.array(squares), np.array(targets), np.array(legal)


UNLIKELY = 0.01  # a move the model gives less than this before an edit makes it illegal: nothing to drop


def move_changes(legal_real: np.ndarray, legal_edited: np.ndarray, probs_clean: np.ndarray, probs_edited: np.ndarray, label) -> list[tuple[str, bool, float, float, str]]:
    """What the edit changed, move by move: for each move whose legality the edited board changes,
    ``(label, now legal, probability before, after, what the model did)``, the last one of
    "dropped", "kept" (made illegal), "took up", "ignored" (made legal) or "already unlikely" (made
    illegal, below ``UNLIKELY`` before). The model follows a change when it drops a move the edit
    made illegal (at most half its probability left) or takes up one it made legal (at least twice
    as likely and at least ``UNLIKELY``)."""
    out = []
    for m in np.flatnonzero(np.asarray(legal_real, bool) != np.asarray(legal_edited, bool)):
        before, after, now_legal = float(probs_clean[m]), float(probs_edited[m]), bool(legal_edited[m])
        if now_legal:
            did = "took up" if after >= max(2 * before, UNLIKELY) else "ignored"
        else:
            did = "already unlikely" if before < UNLIKELY else "dropped" if after <= 0.5 * before else "kept"
        out.append((str(label(int(m))), now_legal, before, after, did))
    return out


def verdict(error_clean: int, error_edited: int, error_random: int, n_legal: int, unit: str = "moves", changes: list[tuple[str, bool, float, float, str]] = ()) -> str:
    """A plain-words conclusion of one edit: first what changed (``move_changes``: the moves the
    edit made illegal that the model dropped, the ones it made legal that the model took up), then
    the legal-move error with the random-direction control beside it.

    The legal-move error counts mistakes in the model's top-N (N = the number of legal ``unit`` of
    the edited board): legal ones missing from it plus illegal ones in it. It summarises, and can
    stay put while the edit visibly works (one move dropped, another not yet taken up): the
    conclusion rests on the changes where there are any the model could follow.
    """
    change = "lowers" if error_edited < error_clean else "raises" if error_edited > error_clean else "leaves"
    numbers = f"from {error_clean} to {error_edited}" if change != "leaves" else f"at {error_clean}"
    parts = []
    for now_legal, did_list in ((False, ("dropped", "kept", "already unlikely")), (True, ("took up", "ignored"))):
        for did in did_list:
            moves = [f"{name} ({b:.1%} → {a:.1%})" for name, legal, b, a, d in changes if legal == now_legal and d == did]
            if moves:
                made = "legal" if now_legal else "illegal"
                text = {"dropped": "the model dropped", "kept": "the model kept", "already unlikely": "already unlikely before", "took up": "the model took up", "ignored": "the model did not take up"}[did]
                parts.append(f"made {made}, {text}: {', '.join(moves)}")
    testable = [c for c in changes if c[4] != "already unlikely"]
    followed = sum(c[4] in ("dropped", "took up") for c in testable)
    if testable:
        if followed == len(testable):
            conclusion = "the model follows the edited board"
        elif followed:
            conclusion = f"the model follows part of the edit ({followed} of {len(testable)} changes)"
        else:
            conclusion = "the model does not follow the edited board at this scale and these layers"
        if followed and error_random <= error_edited:
            conclusion += ", though a random edit of the same size does as well on the legal-move error"
    elif error_edited == error_clean == 0:
        conclusion = "the model's top moves fit the edited board already, so this edit cannot show whether it is followed"
    elif error_edited < error_clean and error_edited < error_random:
        conclusion = "the model follows the edited board"
    elif error_edited < error_clean:
        conclusion = "but no better than a random edit: not evidence that the probe direction is what the model uses"
    else:
        conclusion = "the model does not follow the edited board at this scale and these layers"
    lead = ("What changed: " + "; ".join(parts) + ". ") if parts else ""
    return (
        f"{lead}Conclusion: {conclusion}. The probe edit {change} the legal-move error {numbers}; a random edit of the same size gives {error_random}. "
        f"(Legal-move error: of the model's top {n_legal} {unit}, as many as the edited board has legal, the legal ones it misses plus the illegal ones it holds.)"
    )
