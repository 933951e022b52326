"""Many edits in one batched forward: a strength sweep of one unit beside the same sweep of a
random unit of its kind (the control every intervention carries), and the ablation of sets of
SAE features (the top-k active here, or every feature labelled with a property) beside random
sets of active features of the same size.

Every row of the batch is the same input; row 0 runs unedited and each other row carries its own
edit. Positions before the first edited one are the same in every row, so they run once (the
prefix's keys and values shared), and only the rest runs per row: a sweep of an edit at the last
position costs one short row per strength.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from core.interp.steering.edits import Edit, Feature, Head, Neuron, Unit, check, feature_direction, hook_for
from core.interp.steering.outcome import kl_divergence
from core.models.handle import ModelHandle

STRENGTHS = 20


def first_edited(edits: list[Edit], length: int) -> int:
    """The first position any of ``edits`` changes in an input of ``length`` tokens."""
    starts = [e.at if e.at is not None else (length - 1 if e.from_position is None else e.from_position) for e in edits]
    return max(0, min(min(starts, default=length - 1), length - 1))


def _shift(edit: Edit, start: int) -> Edit:
    """``edit`` with its positions counted from ``start`` (a row that continues a prefix)."""
    if edit.at is not None:
        return replace(edit, at=edit.at - start)
    if edit.from_position is not None:
        return replace(edit, from_position=max(0, edit.from_position - start))
    return edit


def batched_next(handle: ModelHandle, tokens: torch.Tensor, n_rows: int, edits: list[Edit]) -> np.ndarray:
    """``(n_rows, d_vocab)`` next-token probabilities after ``tokens (pos,)``, each row with the
    edits that name it (``Edit.rows``); positions before the first edited one run once."""
    for edit in edits:
        check(handle, edit)
    tokens = torch.as_tensor(tokens, dtype=torch.int64).reshape(-1)
    start = first_edited(edits, len(tokens))
    rows = tokens[start:][None].repeat(n_rows, 1)
    hooks = [hook_for(_shift(e, start)) for e in edits]
    if start == 0:
        logits = handle.run_with_hooks(rows, hooks)
    else:
        with handle.prefix_session(tokens[:start], prefix_hooks=[], row_hooks=hooks) as (_, continue_rows):
            logits = continue_rows(rows)
    return logits[:, -1].float().softmax(-1).numpy()


@dataclass
class Sweep:
    """One unit's edit at each strength, and a random unit's: the next-token distribution read
    four ways. ``illegal`` is None for text (no rules)."""

    strengths: np.ndarray  # (S,)
    top_token: int  # the top next token without the edit
    chosen_token: int  # the token followed (default: the top one at the strongest edit)
    p_top: np.ndarray  # (2, S): unit, control
    p_chosen: np.ndarray  # (2, S)
    illegal: np.ndarray | None  # (2, S)
    kl: np.ndarray  # (2, S) KL(unedited || edited), nats
    control: str  # the control unit, in words


def strength_sweep(
    handle: ModelHandle, tokens: torch.Tensor, edit: Edit, control: Edit, strengths, control_strengths=None, legal: np.ndarray | None = None, chosen: int | None = None, control_name: str = "a random unit"
) -> Sweep:
    """``edit`` and ``control`` (templates: their values are replaced) at every strength in one
    batch: row 0 unedited, then the unit's rows, then the control's (``control_strengths``, one
    per strength: the control's own scale, e.g. its own maximum activation)."""
    strengths = np.asarray(strengths, dtype=np.float64)
    s = len(strengths)
    control_strengths = strengths if control_strengths is None else np.asarray(control_strengths, dtype=np.float64)
    edits = [
        replace(edit, value=torch.tensor(strengths, dtype=torch.float32), per_row=True, rows=(1, 1 + s)),
        replace(control, value=torch.tensor(control_strengths, dtype=torch.float32), per_row=True, rows=(1 + s, 1 + 2 * s)),
    ]
    probs = batched_next(handle, tokens, 1 + 2 * s, edits)
    base, unit_rows, control_rows = probs[0], probs[1 : 1 + s], probs[1 + s :]
    top = int(np.argmax(base))
    chosen = int(np.argmax(unit_rows[-1])) if chosen is None else int(chosen)
    both = np.stack([unit_rows, control_rows])  # (2, S, d_vocab)
    illegal = None if legal is None else 1.0 - (both * np.asarray(legal, bool)).sum(-1)
    kl = np.array([[kl_divergence(base, row) for row in part] for part in both])
    return Sweep(strengths, top, chosen, both[..., top], both[..., chosen], illegal, kl, control_name)


def output_norm(handle: ModelHandle, unit: Unit) -> float:
    """How far one unit of the unit's activation moves the residual stream: a feature's direction,
    a neuron's output weights (what "the same norm" means for a control)."""
    if isinstance(unit, Feature):
        return float(feature_direction(unit.sae, unit.index).norm())
    if isinstance(unit, Neuron):
        return float(handle.model.blocks[unit.layer].mlp.W_out[unit.index].detach().float().norm())
    return float(handle.model.blocks[unit.layer].attn.W_O[unit.index].detach().float().norm())


def random_unit(handle: ModelHandle, unit: Unit, seed: int = 0, candidates=None) -> Unit:
    """Another unit of the same kind, drawn at random (``candidates``: the indices to draw from,
    e.g. the SAE's live features): a neuron of the same layer, a head of the same layer (another
    layer's where there is one head a layer), a feature of the same SAE."""
    rng = np.random.default_rng(seed)
    if isinstance(unit, Feature):
        pool = [int(i) for i in (range(int(unit.sae.cfg.d_sae)) if candidates is None else candidates) if int(i) != unit.index]
        return Feature(unit.sae, unit.hook, int(rng.choice(pool))) if pool else unit
    if isinstance(unit, Neuron):
        pool = [i for i in range(handle.cfg.d_mlp) if i != unit.index]
        return Neuron(unit.layer, int(rng.choice(pool)))
    pool = [(unit.layer, h) for h in range(handle.cfg.n_heads) if h != unit.index] or [(layer, unit.index) for layer in range(handle.cfg.n_layers) if layer != unit.layer]
    if not pool:
        return unit
    layer, head = pool[int(rng.integers(len(pool)))]
    return Head(layer, head)


def active_features(handle: ModelHandle, tokens: torch.Tensor, sae, hook: str, position: int = -1) -> np.ndarray:
    """The features of ``sae`` active at ``position`` of ``tokens (pos,)``, strongest first: the
    pool an ablation's control is drawn from (ablating a feature that is not active changes
    nothing, so a control drawn from every feature would say nothing)."""
    act = handle.activations(torch.as_tensor(tokens, dtype=torch.int64).reshape(1, -1), [hook])[hook][0, position]
    with torch.no_grad():
        f = sae.encode(act[None].to(sae.W_dec.dtype))[0]
    order = torch.argsort(f, descending=True).numpy()
    return order[f.numpy()[order] > 0]


# -- sets of features ------------------------------------------------------------------------------------


def feature_directions(sae) -> torch.Tensor:
    """``(d_sae, d_model)``: every feature's direction in the stream (``feature_direction`` for all)."""
    with torch.no_grad():
        eye = torch.eye(int(sae.cfg.d_sae), dtype=sae.W_dec.dtype)
        return (sae.decode(eye) - sae.decode(torch.zeros_like(eye[:1]))).detach().clone()


def set_ablation_hook(sae, hook: str, masks: torch.Tensor, at: int):
    """A hook zeroing, in each row, the features its mask marks (``masks (rows, d_sae)`` bool),
    at position ``at``; the SAE's error term stays, as for one feature's edit."""
    directions = feature_directions(sae)

    def ablate(act: torch.Tensor, hook=None) -> torch.Tensor:
        x = act[:, at]
        f = sae.encode(x.to(directions.dtype))
        delta = -(f * masks.to(f.dtype)) @ directions
        out = act.clone()
        out[:, at] = x + delta.to(x.dtype)
        return out

    return hook, ablate


@dataclass
class SetAblation:
    """Ablating a set of features against random sets of active features of the same size."""

    features: list[int]
    kl: float
    top_before: float  # the top next token's probability without the edit
    top_after: float
    random_kl: np.ndarray  # (n_random,)
    random_top_after: np.ndarray
    n_active: int

    @property
    def random_sets(self) -> int:
        return len(self.random_kl)


def ablate_set(handle: ModelHandle, tokens: torch.Tensor, sae, hook: str, features: list[int], n_random: int = 8, seed: int = 0) -> SetAblation:
    """Zero ``features`` at the last position of ``tokens (pos,)`` (the SAE's error kept), and, in
    the same batch, ``n_random`` random sets of as many features active there."""
    tokens = torch.as_tensor(tokens, dtype=torch.int64).reshape(-1)
    d_sae = int(sae.cfg.d_sae)
    if any(not 0 <= f < d_sae for f in features):
        raise ValueError(f"features must be in 0..{d_sae - 1}")
    active = active_features(handle, tokens, sae, hook)
    rng = np.random.default_rng(seed)
    k = len(features)
    masks = torch.zeros((2 + n_random, d_sae), dtype=torch.bool)
    masks[1, features] = True
    for r in range(n_random):
        pool = active if len(active) >= k else np.arange(d_sae)
        masks[2 + r, rng.choice(pool, size=min(k, len(pool)), replace=False)] = True
    start = len(tokens) - 1
    name, fn = set_ablation_hook(sae, hook, masks, 0)
    if start == 0:
        probs = handle.run_with_hooks(tokens[None].repeat(len(masks), 1), [(name, fn)])[:, -1].float().softmax(-1).numpy()
    else:
        with handle.prefix_session(tokens[:start], prefix_hooks=[], row_hooks=[(name, fn)]) as (_, continue_rows):
            probs = continue_rows(tokens[start:][None].repeat(len(masks), 1))[:, -1].float().softmax(-1).numpy()
    top = int(np.argmax(probs[0]))
    kls = np.array([kl_divergence(probs[0], p) for p in probs[1:]])
    return SetAblation(list(features), float(kls[0]), float(probs[0, top]), float(probs[1, top]), kls[1:], probs[2:, top], len(active))
