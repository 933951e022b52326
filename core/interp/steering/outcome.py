"""What an edit does to the next move (board games) or the next tokens (text models): the model's
predictions without and with the edit, computed the same way (the same kernels, so an edit that
changes nothing gives the same numbers bit for bit), and what a person compares: the top moves
and their change, the illegal probability mass, the KL divergence between the two next-token
distributions, and the move (or text) the model writes greedily with the edit in place.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from core.games.base import GameState
from core.interp.shared.move_legality import MAX_MOVE_TOKENS
from core.interp.shared.predictions import Predictions, game_tokens, predict
from core.interp.steering.edits import Edit, check, hook_for
from core.models.handle import ModelHandle

TOP = 10
CONTINUATION_TOKENS = 20


def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) in nats between two distributions over the same tokens: how surprised the
    edited model's distribution ``q`` is by the unedited ``p`` (0 when they are equal)."""
    p = np.asarray(p, np.float64)
    q = np.asarray(q, np.float64)
    keep = p > 0
    return float(max(0.0, (p[keep] * (np.log(p[keep]) - np.log(np.maximum(q[keep], 1e-300)))).sum()))


def edit_hooks(edits: list[Edit], handle: ModelHandle) -> tuple[list, list | None]:
    """The hooks of ``edits`` for a game's pass and for the rows that continue it: an edit from
    position ``p`` on also changes every position of a continuing row (they all come after ``p``);
    an edit of one position only changes the rows through the keys and values they read (None:
    the rows run as without hooks)."""
    for edit in edits:
        check(handle, edit)
    on_rows = [replace(e, from_position=0) for e in edits if e.at is None and e.from_position is not None]
    return [hook_for(e) for e in edits], [hook_for(e) for e in on_rows] if on_rows else None


def rows_hooked(edits: list[Edit]) -> bool:
    """Whether ``edits`` reach the rows that continue a game (an edit from a position on)."""
    return any(e.at is None and e.from_position is not None for e in edits)


@dataclass
class MoveRow:
    move: str
    before: float
    after: float
    legal: bool

    @property
    def change(self) -> float:
        return self.after - self.before


@dataclass
class BoardOutcome:
    """A board game's position before and after an edit."""

    before: Predictions
    after: Predictions
    rows: list[MoveRow]  # the top moves before and after (their union, by the larger probability)
    kl: float  # KL(before || after) of the very next token, nats
    move_before: str  # the move the model plays (chess: its likeliest whole move; PGN: what it writes greedily)
    move_after: str
    move_before_legal: bool
    move_after_legal: bool

    @property
    def illegal_before(self) -> float:
        return self.before.illegal_mass

    @property
    def illegal_after(self) -> float:
        return self.after.illegal_mass


def _move_table(game, state: GameState, before: Predictions, after: Predictions) -> list[MoveRow]:
    if game.square_moves:
        legal = np.asarray(state.legal).reshape(-1)
        order = np.argsort(-np.maximum(before.probs, after.probs), kind="stable")[:TOP]
        return [MoveRow(game.square_label(int(s)), float(before.probs[s]), float(after.probs[s]), bool(legal[s])) for s in order]
    legal_set = set(int(m) for m in state.legal_moves)
    moves = set(before.move_probs) | set(after.move_probs)
    ranked = sorted(moves, key=lambda m: -max(before.move_probs.get(m, 0.0), after.move_probs.get(m, 0.0)))[:TOP]
    label = (lambda m: game.move_text(state.moves, m)) if game.move_end_token is not None else game.move_label  # PGN: as the model writes it
    return [MoveRow(label(m), before.move_probs.get(m, 0.0), after.move_probs.get(m, 0.0), m in legal_set) for m in ranked]


def _likeliest(game, state: GameState, pred: Predictions) -> tuple[str, bool]:
    """The likeliest whole move of ``pred`` and whether the rules allow it (chess: whether it is
    one of the position's legal moves, which python-chess lists; the illegal ones scored are
    from- and to-square pairs outside that list)."""
    if game.square_moves:
        square = int(np.argmax(pred.probs))
        return game.square_label(square), bool(np.asarray(state.legal).reshape(-1)[square])
    if not pred.move_probs:
        return "", False
    move = max(pred.move_probs, key=pred.move_probs.get)
    return game.move_label(move), move in set(int(m) for m in state.legal_moves)


def greedy_text(handle: ModelHandle, prefix: torch.Tensor, edits: list[list[Edit]], steps: int, stop: int | None = None) -> list[list[int]]:
    """The tokens each edit set's model writes greedily after ``prefix (pos,)``, one row per set of
    ``edits`` in one batch (a set's edits apply to its row only), up to ``steps`` tokens or the
    ``stop`` token.

    The prefix runs once with the edits in place; each token written runs alone, reading the
    prefix's keys and values (which carry the edit), with the edits from ``p`` on applied to it
    too. An edit of one position stays at that position; one with neither ``at`` nor
    ``from_position`` is an edit of the prefix's last position.
    """
    from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

    n, length = len(edits), len(prefix)
    prefix_hooks, step_hooks = [], []
    for row, row_edits in enumerate(edits):
        for edit in row_edits:
            check(handle, edit)
            if edit.at is None and edit.from_position is None:
                edit = replace(edit, at=length - 1)
            prefix_hooks.append(hook_for(replace(edit, rows=(row, row + 1))))
            if edit.at is None:
                step_hooks.append(hook_for(replace(edit, rows=(row, row + 1), from_position=0)))
    cfg = handle.cfg
    steps = max(0, min(steps, cfg.n_ctx - length))
    written = np.zeros((n, steps), dtype=np.int64)
    with handle.session() as model, torch.inference_mode():
        cache = TransformerLensKeyValueCache.init_cache(cfg, cfg.device, n)
        tokens = prefix[None].repeat(n, 1).to(cfg.device)
        for k in range(steps):
            with model.hooks(fwd_hooks=prefix_hooks if k == 0 else step_hooks, reset_hooks_end=True):
                logits = model(tokens, past_kv_cache=cache, attention_mask=torch.ones(tokens.shape, dtype=torch.long, device=cfg.device))[:, -1]
            nxt = logits.argmax(-1)
            written[:, k] = nxt.cpu().numpy()
            if stop is not None and bool((written[:, : k + 1] == stop).any(1).all()):
                written = written[:, : k + 1]
                break
            tokens = nxt[:, None]
    out = []
    for row in written.tolist():
        out.append(row[: row.index(stop) + 1] if stop is not None and stop in row else row)
    return out


def _written_move(handle: ModelHandle, state: GameState, edit_sets: list[list[Edit]]) -> list[tuple[str, bool]]:
    """PGN characters: the move each edit set's model writes, character by character to the
    space that ends it, and whether python-chess reads it as legal ("" when it never ends)."""
    game = handle.game
    end = game.move_end_token
    prefix = game_tokens(state.moves, game)[0]
    out = []
    for row in greedy_text(handle, prefix, edit_sets, MAX_MOVE_TOKENS, stop=end):
        text = "".join(game.vocab[t] for t in row[: row.index(end)]) if end in row else ""
        out.append((text, bool(text) and game.accepts_move_text(state.moves, text)))
    return out


@dataclass(frozen=True)
class Unedited:
    """A position's predictions with no edit, on the kernels the edited runs take (computed once
    per position: every edit of it compares against the same numbers)."""

    pred: Predictions
    move: str
    legal: bool
    rows_hooked: bool  # computed for edits that reach the continuing rows (their kernels)


def unedited(handle: ModelHandle, state: GameState, rows_hooked: bool = False) -> Unedited:
    """The unedited side of ``steer_position`` for edits that reach the rows continuing the game
    or not (``rows_hooked``: the same kernels as those edits take); raises ``ValueError`` where
    there is nothing to predict (no move yet, the game over, the next move past the context)."""
    game = handle.game
    if state.is_over:
        raise ValueError("the game is over: there is no next move to change")
    pred = predict(handle, state, ([], [] if rows_hooked else None))
    if pred is None:
        raise ValueError("play a move first: the model predicts from the moves played" if not state.moves else "the next move no longer fits in the model's context")
    if game.move_end_token is not None:
        (move, legal), = _written_move(handle, state, [[]])
    else:
        move, legal = _likeliest(game, state, pred)
    return Unedited(pred, move, legal, rows_hooked)


def steer_position(handle: ModelHandle, state: GameState, edits: list[Edit], before: Unedited | None = None) -> BoardOutcome:
    """A board game's position with and without ``edits`` (checked first: ``EditError`` says what
    cannot run; ``before``: the position's ``unedited`` side, when already computed). Raises
    ``ValueError`` where there is no prediction."""
    game = handle.game
    hooks = edit_hooks(edits, handle)
    if before is None or before.rows_hooked != (hooks[1] is not None):
        before = unedited(handle, state, hooks[1] is not None)
    after = predict(handle, state, hooks)
    if after is None:
        raise ValueError("the next move no longer fits in the model's context")
    next_before = before.pred.next_token if before.pred.next_token is not None else _square_distribution(before.pred)
    next_after = after.next_token if after.next_token is not None else _square_distribution(after)
    if game.move_end_token is not None:
        (move_a, legal_a), = _written_move(handle, state, [edits])
    else:
        move_a, legal_a = _likeliest(game, state, after)
    return BoardOutcome(before.pred, after, _move_table(game, state, before.pred, after), kl_divergence(next_before, next_after), before.move, move_a, before.legal, legal_a)


def _square_distribution(pred: Predictions) -> np.ndarray:
    """One token per move: the move distribution over squares is the next-token distribution
    (squares without a token hold 0; the rest of the mass sits on tokens that name no square)."""
    p = np.asarray(pred.probs, np.float64)
    return np.append(p, max(0.0, 1.0 - p.sum()))


@dataclass
class TextOutcome:
    """A text model's next token and continuation with and without an edit."""

    probs_before: np.ndarray  # (d_vocab,) at the last position
    probs_after: np.ndarray
    kl: float
    continuation_before: list[int]
    continuation_after: list[int]

    def top(self, k: int = TOP) -> list[tuple[int, float, float]]:
        """``(token, before, after)`` for the top tokens before and after (their union)."""
        order = np.argsort(-np.maximum(self.probs_before, self.probs_after), kind="stable")[:k]
        return [(int(t), float(self.probs_before[t]), float(self.probs_after[t])) for t in order]


def steer_text(handle: ModelHandle, tokens: torch.Tensor, edits: list[Edit], steps: int = CONTINUATION_TOKENS) -> TextOutcome:
    """The next-token distribution after ``tokens (pos,)`` and a greedy continuation of ``steps``
    tokens, without and with ``edits``: one batch of two rows, the edit on the second."""
    tokens = torch.as_tensor(tokens, dtype=torch.int64).reshape(-1)
    hooks = []
    for edit in edits:
        check(handle, edit)
        hooks.append(hook_for(replace(edit, rows=(1, 2))))
    probs = handle.run_with_hooks(tokens[None].repeat(2, 1), hooks)[:, -1].float().softmax(-1).numpy()
    before, after = greedy_text(handle, tokens, [[], edits], steps) if steps else ([], [])
    return TextOutcome(probs[0], probs[1], kl_divergence(probs[0], probs[1]), before, after)
