"""The logit lens and direct attribution of whole moves, for games whose move is several tokens.

With PGN characters a move is ``Nf3`` plus the space that ends it, so "what does layer L predict"
is a question about strings. A legal move's lens probability after layer L is the product of its
tokens' probabilities under layer L's read-out (the final LayerNorm and unembedding applied to the
residual stream after L), each token read at the position that predicts it, with the move's own
earlier tokens as input, as the model reads them. One pass over the game so far, then one batched
pass over every legal move's tokens with the prefix's keys and values cached (what the board player
does for the output), gives every layer's read-out of every legal move at once. At the last layer
the numbers are the board player's move distribution.

The whole-move attribution is the same decomposition as ``lens.attribute``, summed over the move's
tokens: each part's direct effect on the sum of the logits of the move's tokens, each at its own
position (a sum of logits, so the parts add up exactly; the log-softmax normaliser is not a part).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.games.base import GameState
from core.interp.lens.logit_lens import Attribution, agreement_with_final, attribute, lens_hooks
from core.interp.shared.position_run import PositionRun
from core.models.handle import ModelHandle


@dataclass(frozen=True)
class MoveLens:
    """Every read-out's distribution over the legal moves of one position.

    ``logp (points, moves)``: log-probability of each legal move (its tokens, in order) under
    each lens point's read-out; the last point is the model's output. ``next_token (points,
    d_vocab)``: each read-out's distribution of the very next token (a move's first character).
    """

    labels: list[str]
    moves: tuple[int, ...]
    logp: np.ndarray
    next_token: np.ndarray

    @property
    def probs(self) -> np.ndarray:
        return np.exp(self.logp)

    @property
    def legal_mass(self) -> np.ndarray:
        """``(points,)``: how much of each read-out's distribution falls on legal moves."""
        return self.probs.sum(-1)

    def agreement(self) -> tuple[np.ndarray, np.ndarray]:
        """Per point: the rank of the output's likeliest legal move and KL(output ‖ read-out),
        both over the legal moves (each read-out renormalised on them)."""
        return agreement_with_final(torch.from_numpy(self.logp))

    def top_move(self, point: int) -> int:
        return int(self.moves[int(np.argmax(self.logp[point]))]) if self.moves else -1

    def marginals(self, game) -> tuple[np.ndarray, np.ndarray]:
        """``(from, to)``, each ``(points, squares)``: the lens probability of the legal moves
        summed by the square they start on, and by the square they end on."""
        squares = np.array([game.move_squares(m) for m in self.moves], dtype=np.int64).reshape(-1, 2)
        frm = np.zeros((len(self.labels), game.n_squares), dtype=np.float64)
        to = np.zeros_like(frm)
        np.add.at(frm.T, squares[:, 0], self.probs.T)
        np.add.at(to.T, squares[:, 1], self.probs.T)
        return frm, to


def _read_out(model, resid: torch.Tensor) -> torch.Tensor:
    return model.unembed(model.ln_final(resid)).float().log_softmax(-1)


def move_lens(handle: ModelHandle, state: GameState, incl_mid: bool = False, run: PositionRun | None = None) -> MoveLens:
    """The lens of every legal move after ``state`` (``run``: a cached pass of the game so far,
    whose residual streams are read instead of a new pass over the prefix)."""
    game = handle.game
    prefix, rows = game.continuation_rows(state)
    points = lens_hooks(handle.cfg.n_layers, incl_mid)
    hooks = [h for _, h in points]
    labels = [label for label, _ in points]
    if not rows:
        return MoveLens(labels, (), np.zeros((len(points), 0)), np.zeros((len(points), handle.cfg.d_vocab)))
    if len(prefix) + max(len(t) for _, t in rows) > game.n_ctx:
        raise ValueError("the next move no longer fits in the model's context")
    prefix_t = torch.from_numpy(np.asarray(prefix, dtype=np.int64))
    if run is not None and run.tokens.shape[1] == len(prefix) and all(h in run.cache.cache_dict for h in hooks):
        last = {h: run.cache[h][0, -1] for h in hooks}
    else:
        acts = handle.activations(prefix_t[None], hooks)
        last = {h: acts[h][0, -1] for h in hooks}
    width = max(len(t) for _, t in rows) - 1
    inputs = np.full((len(rows), max(width, 1)), game.pad_token, dtype=np.int64)
    for i, (_, toks) in enumerate(rows):
        inputs[i, : len(toks) - 1] = toks[:-1]
    cached = (run.logits, run.cache) if run is not None and torch.equal(run.tokens[0].cpu(), prefix_t) else None
    with handle.prefix_session(prefix_t, cached) as (_, continue_rows):
        _, row_acts = continue_rows(torch.from_numpy(inputs), names=hooks)
        model = handle.model
        with torch.inference_mode():
            first = torch.stack([_read_out(model, last[h].to(handle.device)) for h in hooks]).cpu()  # (P, V)
            later = torch.stack([_read_out(model, row_acts[h].to(handle.device)) for h in hooks]).cpu() if width else None  # (P, n, w, V)
    logp = np.zeros((len(points), len(rows)), dtype=np.float64)
    first_np = first.double().numpy()
    later_np = later.double().numpy() if later is not None else None
    for i, (_, toks) in enumerate(rows):
        logp[:, i] = first_np[:, toks[0]]
        for j in range(1, len(toks)):
            logp[:, i] += later_np[:, i, j - 1, toks[j]]
    return MoveLens(labels, tuple(int(m) for m, _ in rows), logp, first.exp().numpy())


def move_tokens_after(handle: ModelHandle, state: GameState, move: int) -> tuple[np.ndarray, list[int]]:
    """The game's tokens so far and the tokens ``move`` adds (as ``continuation_rows`` scores it)."""
    prefix, rows = handle.game.continuation_rows(state)
    for m, toks in rows:
        if int(m) == int(move):
            return np.asarray(prefix, dtype=np.int64), list(toks)
    raise ValueError(f"{handle.game.move_label(move)} is not a legal move here")


def move_attribution(handle: ModelHandle, state: GameState, move: int) -> Attribution:
    """DLA of a whole move: each part's direct effect on the sum of its tokens' logits, each
    read at the position that predicts it (one cached pass over the game and the move).

    The result has one column (index 0): ``dla (parts, 1)``, ``bias (1,)``, ``logits (1,)`` the
    summed logit, and ``neuron_dla (layers, d_mlp, 1)`` summed the same way; ``neuron_acts`` is
    each neuron's mean activation over those positions.
    """
    prefix, toks = move_tokens_after(handle, state, move)
    tokens = np.concatenate([prefix, np.asarray(toks[:-1], dtype=np.int64)])
    if len(tokens) > handle.game.n_ctx:
        raise ValueError("the move no longer fits in the model's context")
    tokens_t = torch.from_numpy(tokens[None])
    logits, cache = handle.run_with_cache(tokens_t)
    run = PositionRun(tokens_t, logits, cache)
    parts = [attribute(handle, (), position=len(prefix) - 1 + j, run=run) for j in range(len(toks))]
    pick = lambda t, j: t[..., toks[j] : toks[j] + 1]  # noqa: E731 - one token's column
    first = parts[0]
    return Attribution(
        first.labels, first.kinds, first.layers,
        dla=sum(pick(a.dla, j) for j, a in enumerate(parts)),
        bias=sum(pick(a.bias, j) for j, a in enumerate(parts)),
        logits=sum(pick(a.logits, j) for j, a in enumerate(parts)),
        neuron_dla=sum(pick(a.neuron_dla, j) for j, a in enumerate(parts)),
        neuron_acts=sum(a.neuron_acts for a in parts) / len(parts),
    )
