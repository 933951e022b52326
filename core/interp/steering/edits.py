"""One intervention mechanism for every unit: ablate it (to zero or to its corpus mean), clamp it
to a value, scale it by a factor, or add its output direction times a strength, at one position
or at every position from ``p`` on, in every row of the batch or in some (a batch can hold a
strength sweep and its control: one value per row).

A feature's edit goes through its SAE with the SAE's error term kept: the model's activation is
the reconstruction plus an error the SAE does not explain, and only the edited feature's share of
the reconstruction changes. It is applied as ``x + (f'_i - f_i) d_i``, ``d_i`` the feature's
direction in the stream (``decode(e_i) - decode(0)``: SAELens may rescale its decoder rows), so
the decoder's bias and the error cancel and an edit that leaves the feature as it was changes
nothing, bit for bit. This
equals SAELens's ``HookedSAETransformer`` with a hook on the feature activations and
``use_error_term=True`` to float32 rounding (``tests/test_steering_edits.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from core.interp.shared.activations import collect
from core.models.handle import ModelHandle

OPERATIONS = ("zero", "mean", "clamp", "add", "scale")


@dataclass(frozen=True)
class Neuron:
    """MLP neuron ``index`` of block ``layer`` (its activation ``blocks.L.mlp.hook_post``)."""

    layer: int
    index: int

    @property
    def hook(self) -> str:
        return f"blocks.{self.layer}.mlp.hook_post"


@dataclass(frozen=True)
class Head:
    """Attention head ``index`` of block ``layer``: its output before the mix (``hook_z``)."""

    layer: int
    index: int

    @property
    def hook(self) -> str:
        return f"blocks.{self.layer}.attn.hook_z"


@dataclass(frozen=True)
class Feature:
    """Feature ``index`` of an SAE (SAELens ``SAE``) reading the model at ``hook``."""

    sae: object
    hook: str
    index: int


Unit = Neuron | Head | Feature


@dataclass(frozen=True)
class Edit:
    """``operation`` on ``unit``: ``zero``; ``mean`` (``value`` is the unit's corpus mean: a number,
    or a ``d_head`` vector for a head); ``clamp`` to ``value``; ``scale`` by ``value`` (0 is a zero
    ablation, 1 no edit); ``add`` the unit's output direction times ``value`` (a feature's decoder
    row, a neuron's output weights; not for heads).

    Positions: ``at`` (one position, counted from the start of the input), else every position
    from ``from_position`` on, else the last position of each pass. Rows: ``rows = (start, stop)``
    of the batch (default every row); with ``per_row`` the value is a tensor of one number per
    row of that range."""

    unit: Unit
    operation: str
    value: float | torch.Tensor = 0.0
    from_position: int | None = None
    at: int | None = None
    rows: tuple[int, int] | None = None
    per_row: bool = False


class EditError(ValueError):
    """An edit the model or the unit cannot take: the message says which part and why."""


def check(handle: ModelHandle, edit: Edit) -> None:
    """Refuse what cannot run, with the reason: an unknown operation, an index out of range, a
    value that is not a finite number of sensible size."""
    cfg, unit = handle.cfg, edit.unit
    if edit.operation not in OPERATIONS:
        raise EditError(f"unknown operation {edit.operation!r}: one of {', '.join(OPERATIONS)}")
    if isinstance(unit, (Neuron, Head)):
        if not 0 <= unit.layer < cfg.n_layers:
            raise EditError(f"layer {unit.layer} is not in 0..{cfg.n_layers - 1}")
        size = cfg.d_mlp if isinstance(unit, Neuron) else cfg.n_heads
        if not 0 <= unit.index < size:
            raise EditError(f"{type(unit).__name__.lower()} {unit.index} is not in 0..{size - 1}")
    elif isinstance(unit, Feature):
        d_sae = int(unit.sae.cfg.d_sae)
        if not 0 <= unit.index < d_sae:
            raise EditError(f"feature {unit.index} is not in 0..{d_sae - 1}")
    else:
        raise EditError(f"not a unit: {unit!r}")
    if isinstance(unit, Head) and edit.operation in ("clamp", "add"):
        raise EditError("a head can be ablated (zero or mean) or scaled, not clamped or added")
    if edit.per_row and not (isinstance(edit.value, torch.Tensor) and edit.value.dim() == 1 and edit.operation in ("clamp", "add", "scale")):
        raise EditError("a value per row is a 1-D tensor, for clamp, add or scale")
    values = edit.value.reshape(-1).tolist() if isinstance(edit.value, torch.Tensor) else [edit.value]
    if not all(isinstance(v, (int, float)) and math.isfinite(v) and abs(v) <= 1e6 for v in values):
        raise EditError(f"the value must be a finite number of size at most 1e6, got {edit.value!r}")


def _positions(act: torch.Tensor, edit: Edit) -> slice:
    """The positions (dimension 1 of every hooked activation) the edit changes (none where ``at``
    lies outside this pass)."""
    n = act.shape[1]
    if edit.at is not None:
        return slice(edit.at, edit.at + 1) if 0 <= edit.at < n else slice(0, 0)
    if edit.from_position is None:
        return slice(n - 1, n)
    return slice(min(max(edit.from_position, 0), n), n)


def _rows(act: torch.Tensor, edit: Edit) -> slice:
    return slice(0, act.shape[0]) if edit.rows is None else slice(*edit.rows)


def _value(edit: Edit, like: torch.Tensor) -> torch.Tensor:
    """The edit's value, shaped to broadcast over ``like (rows, positions, ...)``: one number, or
    one per row."""
    if edit.per_row:
        v = edit.value.to(like.device, like.dtype)
        return v.reshape((-1,) + (1,) * (like.dim() - 1))
    return torch.as_tensor(float(edit.value), dtype=like.dtype, device=like.device)


def feature_direction(sae, index: int) -> torch.Tensor:
    """Feature ``index``'s direction in the model's stream: what one unit of its activation adds
    to the SAE's reconstruction (the decoder is affine in the features)."""
    with torch.no_grad():  # not inference mode: the direction may meet autograd later (attribution)
        one = torch.zeros(1, int(sae.cfg.d_sae), dtype=sae.W_dec.dtype)
        base = sae.decode(one)[0]
        one[0, index] = 1.0
        return (sae.decode(one)[0] - base).detach().clone()


def hook_for(edit: Edit) -> tuple[str, Callable]:
    """``(hook name, function)`` applying ``edit`` to a forward pass; returns a new tensor, so the
    pass's own activations are never written in place."""
    unit, op = edit.unit, edit.operation

    if isinstance(unit, Feature):
        sae = unit.sae
        direction = feature_direction(sae, unit.index)

        def feature_hook(act: torch.Tensor, hook=None) -> torch.Tensor:
            rows, at = _rows(act, edit), _positions(act, edit)
            x = act[rows, at]
            if op == "add":
                delta = _value(edit, x[..., :1]) * direction.to(x.dtype)
            else:
                f = sae.encode(x.to(direction.dtype))[..., unit.index]
                if op == "zero":
                    target = torch.zeros_like(f)
                elif op == "scale":
                    target = f * _value(edit, f)
                else:
                    target = torch.zeros_like(f) + _value(edit, f)
                delta = ((target - f)[..., None] * direction).to(x.dtype)  # only this feature's share of the reconstruction
            out = act.clone()
            out[rows, at] = x + delta
            return out

        return unit.hook, feature_hook

    if isinstance(unit, Neuron):
        def neuron_hook(act: torch.Tensor, hook=None) -> torch.Tensor:
            rows, at = _rows(act, edit), _positions(act, edit)
            a = act[rows, at, unit.index]
            out = act.clone()
            if op == "add":
                out[rows, at, unit.index] = a + _value(edit, a)
            elif op == "scale":
                out[rows, at, unit.index] = a * _value(edit, a)
            else:
                out[rows, at, unit.index] = torch.zeros_like(a) + (0.0 if op == "zero" else _value(edit, a))
            return out

        return unit.hook, neuron_hook

    def head_hook(act: torch.Tensor, hook=None) -> torch.Tensor:  # act (batch, pos, head, d_head)
        rows, at = _rows(act, edit), _positions(act, edit)
        z = act[rows, at, unit.index]
        out = act.clone()
        if op == "scale":
            out[rows, at, unit.index] = z * _value(edit, z)
        else:
            out[rows, at, unit.index] = torch.zeros_like(z) + (0.0 if op == "zero" else torch.as_tensor(edit.value, dtype=act.dtype, device=act.device))
        return out

    return unit.hook, head_hook


def unit_mean(handle: ModelHandle, unit: Unit, games=None, tokens: torch.Tensor | None = None) -> float | torch.Tensor:
    """The unit's mean over the positions where ``games`` are read (a move's position; every
    position a board game's model predicts from), or over every position of ``tokens (n, pos)``
    (text windows): the value a mean ablation puts in. A number for a feature or a neuron; a
    ``d_head`` vector for a head (its whole output, as it is replaced)."""
    if tokens is not None:
        acts = handle.activations(torch.as_tensor(tokens, dtype=torch.int64), [unit.hook])[unit.hook]
        acts = acts.reshape((-1,) + tuple(acts.shape[2:])).float()
    else:
        acts = collect(handle, games, [unit.hook]).acts[unit.hook]
    if isinstance(unit, Feature):
        with torch.no_grad():
            return float(unit.sae.encode(acts.to(unit.sae.W_dec.dtype))[:, unit.index].mean())
    if isinstance(unit, Neuron):
        return float(acts[:, unit.index].mean())
    return acts[:, unit.index].mean(0)


def run_with_edits(handle: ModelHandle, tokens: torch.Tensor, edits: list[Edit]) -> torch.Tensor:
    """Logits ``(batch, pos, d_vocab)`` of the model with every edit in place, through scoped
    hooks on the shared model (checked first; nothing is left attached, even on an error)."""
    for edit in edits:
        check(handle, edit)
    return handle.run_with_hooks(tokens, [hook_for(edit) for edit in edits])
