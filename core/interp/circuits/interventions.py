"""Edits of transcoder features in the real model: the test of what a circuit claims.

A feature at (layer, position) is set to ``factor ×`` its activation (0: removed). The MLP's
true output keeps everything the transcoder does not explain: the edit adds only
``(f' − f) · W_dec[feature]`` to the MLP's output at that position, with ``f`` the feature's
activation in the edited run itself (an edit upstream changes what a later feature reads). A
factor of 1 is the identity. The hooks are scoped: they live only for the call that passes them,
so the shared model is never left edited.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class FeatureEdit:
    layer: int
    position: int
    feature: int
    factor: float = 0.0


def edit_hooks(transcoders: dict[int, object], edits: list[FeatureEdit]) -> list:
    """Forward hooks applying ``edits`` on a pass over the whole input (positions as in it)."""
    by_layer: dict[int, list[FeatureEdit]] = defaultdict(list)
    for e in edits:
        by_layer[e.layer].append(e)
    hooks = []
    for layer, group in by_layer.items():
        tc = transcoders[layer]
        kept: dict[str, torch.Tensor] = {}
        positions = torch.tensor([e.position for e in group])
        features = torch.tensor([e.feature for e in group])
        factors = torch.tensor([e.factor for e in group], dtype=torch.float32)

        def keep(x, hook=None, kept=kept):
            kept["x"] = x
            return x

        def edit(y, hook=None, kept=kept, tc=tc, positions=positions, features=features, factors=factors):
            x = kept["x"][:, positions].float()  # (batch, edits, d)
            w_enc = tc.W_enc.detach().float()[:, features]  # (d, edits)
            pre = torch.einsum("bed,de->be", x, w_enc) + tc.b_enc.detach().float()[features]
            acts = _acts(tc, pre, features)
            delta = ((factors - 1.0) * acts)[..., None] * tc.W_dec.detach().float()[features]  # (batch, edits, d)
            y = y.clone()
            y.index_add_(1, positions.to(y.device), delta.to(y.dtype).to(y.device))
            return y

        hooks += [(f"blocks.{layer}.ln2.hook_normalized", keep), (f"blocks.{layer}.hook_mlp_out", edit)]
    return hooks


def _acts(tc, pre: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """The activation function of ``tc`` (ReLU, or JumpReLU with its thresholds) on the
    pre-activations of the given features."""
    acts = torch.relu(pre)
    threshold = getattr(tc, "threshold", None)
    if threshold is not None:
        acts = acts * (pre > threshold.detach().float()[features])
    return acts
