"""The replacement model: every MLP replaced by its transcoder, as scoped hooks on the shared model.

At each layer the hook on ``blocks.L.ln2.hook_normalized`` keeps the MLP's input, and the hook on
``blocks.L.hook_mlp_out`` returns the transcoder's output instead of the MLP's. With ``errors``
the output is the transcoder's plus the error term (the MLP's true output minus the
transcoder's), which makes the replacement exact: the *local* replacement the attribution graph
is computed in. The quality measures compare three runs on the same held-out games: the model,
the replacement without error terms, and the model with every MLP's output replaced by its mean
(the baseline that "loss recovered" is measured against).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core.models.handle import ModelHandle

ROOT = Path(__file__).resolve().parents[3]
TRANSCODERS = ROOT / "assets" / "transcoders"


def transcoder_folder(model: str) -> Path | None:
    """The bundled transcoder set of ``model`` (``assets/transcoders/<model>/``, one SAELens
    transcoder per layer in ``L<n>/`` and a ``card.json``), or None."""
    folder = TRANSCODERS / model
    return folder if (folder / "card.json").exists() else None


def load_transcoders(folder: Path, n_layers: int) -> dict[int, object]:
    """``{layer: SAELens SkipTranscoder}`` for every layer with a folder ``L<n>``; raises
    ``ValueError`` saying which layer is missing or does not fit."""
    from sae_lens import SAE

    out = {}
    for layer in range(n_layers):
        path = Path(folder) / f"L{layer}"
        if not (path / "cfg.json").exists():
            raise ValueError(f"no transcoder for layer {layer} in {folder}")
        tc = SAE.load_from_disk(str(path), device="cpu")
        if tc.cfg.metadata.hook_name != f"blocks.{layer}.ln2.hook_normalized":
            raise ValueError(f"{path} reads {tc.cfg.metadata.hook_name}, not layer {layer}'s MLP input")
        out[layer] = tc.eval()
    return out


def transcoder_out(tc, x: torch.Tensor) -> torch.Tensor:
    """A skip transcoder's output for MLP inputs ``x (..., d_model)``."""
    return tc.decode(tc.encode(x)) + x @ tc.W_skip.T


def replacement_hooks(transcoders: dict[int, object], with_errors: bool = False) -> list:
    """Hooks that replace each listed layer's MLP output by its transcoder's (plus the error term
    with ``with_errors``: the model's own output, computed through the transcoder)."""
    kept: dict[int, torch.Tensor] = {}
    hooks = []
    for layer, tc in transcoders.items():
        def keep(x, hook=None, layer=layer):
            kept[layer] = x
            return x

        def replace(y, hook=None, layer=layer, tc=tc):
            out = transcoder_out(tc, kept[layer].to(tc.W_dec.dtype))
            if not with_errors:
                return out.to(y.dtype)
            # transcoder + error term summed in float64, so the sum rounds back to the MLP's own output
            out = out.double()
            return (out + (y.double() - out)).to(y.dtype)

        hooks += [(f"blocks.{layer}.ln2.hook_normalized", keep), (f"blocks.{layer}.hook_mlp_out", replace)]
    return hooks


def mean_ablation_hooks(means: dict[int, torch.Tensor]) -> list:
    """Every MLP's output replaced by its mean output (``means[layer] (d_model,)``)."""
    return [(f"blocks.{layer}.hook_mlp_out", lambda y, hook=None, m=m: torch.zeros_like(y) + m.to(y.dtype)) for layer, m in means.items()]


@dataclass
class ReplacementScores:
    ce_model: float
    ce_replacement: float
    ce_mean_ablated: float
    top1_legal_model: float
    top1_legal_replacement: float
    positions: int

    @property
    def ce_recovered(self) -> float:
        """How much of the loss that mean-ablating every MLP costs the replacement wins back."""
        return (self.ce_mean_ablated - self.ce_replacement) / max(self.ce_mean_ablated - self.ce_model, 1e-12)


def _loss_and_legal(logits: torch.Tensor, target: torch.Tensor, legal: torch.Tensor | None, mask: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy against ``target`` (a distribution per position) and the top-1 legal rate
    over the positions of ``mask``."""
    logp = F.log_softmax(logits.float(), dim=-1)[mask]
    ce = float(-(target[mask] * logp).sum(-1).mean())
    top1 = float(legal[mask].gather(-1, logp.argmax(-1, keepdim=True)).float().mean()) if legal is not None else float("nan")
    return ce, top1


def replacement_scores(handle: ModelHandle, transcoders: dict[int, object], games: np.ndarray | None = None, windows: torch.Tensor | None = None, batch: int = 50) -> ReplacementScores:
    """The model, its replacement (no error terms) and its mean-ablated MLPs on held-out games
    (the training objective: cross-entropy against the legal moves' distribution, and top-1
    legal) or text windows (next-token cross-entropy)."""
    if windows is not None:
        tokens = torch.as_tensor(windows, dtype=torch.int64)
        target = F.one_hot(tokens[:, 1:], handle.cfg.d_vocab).float()
        tokens, legal = tokens[:, :-1], None
        mask = torch.ones(tokens.shape, dtype=torch.bool)
    else:
        tb = handle.game.token_batch(np.asarray(games))
        tokens = torch.from_numpy(tb.tokens)
        weights = torch.from_numpy(tb.weights)
        target = weights / weights.sum(-1, keepdim=True).clamp(min=1e-12)
        legal, mask = torch.from_numpy(tb.legal), torch.from_numpy(tb.valid)
    means = _mlp_means(handle, tokens, mask)
    runs = {"model": [], "replacement": replacement_hooks(transcoders), "mean": mean_ablation_hooks(means)}
    totals = {k: [0.0, 0.0] for k in runs}
    n = int(mask.sum())
    for start in range(0, len(tokens), batch):
        rows = slice(start, start + batch)
        w = int(mask[rows].sum())
        if not w:
            continue
        for name, hooks in runs.items():
            logits = handle.run_with_hooks(tokens[rows], hooks)
            ce, top1 = _loss_and_legal(logits, target[rows], None if legal is None else legal[rows], mask[rows])
            totals[name][0] += ce * w
            totals[name][1] += top1 * w
    avg = {k: (v[0] / n, v[1] / n) for k, v in totals.items()}
    return ReplacementScores(avg["model"][0], avg["replacement"][0], avg["mean"][0], avg["model"][1], avg["replacement"][1], n)


def _mlp_means(handle: ModelHandle, tokens: torch.Tensor, mask: torch.Tensor) -> dict[int, torch.Tensor]:
    """Each MLP's mean output over the positions of ``mask``."""
    hooks = [f"blocks.{layer}.hook_mlp_out" for layer in range(handle.cfg.n_layers)]
    acts = handle.activations(tokens, hooks)
    return {layer: acts[h][mask].float().mean(0) for layer, h in enumerate(hooks)}
