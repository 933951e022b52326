"""Fine-tune a full set of BatchTopK transcoders together, so the replacement model (every MLP
replaced, no error terms) predicts what the model predicts.

Trained one layer at a time, each transcoder only sees the model's own MLP inputs; in the
replacement every later layer reads inputs that the earlier transcoders' errors have moved, and
the errors compound (othello8: 70 % of the loss recovered from per-layer FVUs of 0.04 to 0.15).
This stage trains all of them at once on the KL divergence from the model's next-token
distribution to the replacement's, plus each layer's FVU on the model's own MLP inputs, so the
transcoders stay faithful locally (the attribution graph's error nodes stay small) while the
replacement as a whole learns to agree with the model (end-to-end training, as Braun et al. 2024
did for SAEs). The model's weights are never changed: hooks only, and no gradient reaches them.

Checkpoints (the transcoders' weights, thresholds and the step) go to ``finetune.safetensors`` +
``finetune.json`` in the set's folder; a run started again resumes there (Adam's moments restart).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from core.models.handle import ModelHandle
from core.train.transcoder_basics import TRANSCODER_SEED_BASE, batch_topk, hooks_of, unit_decoder_rows

FINETUNE_SEED_BASE = TRANSCODER_SEED_BASE + 7


@dataclass
class FinetuneConfig:
    tokens: int = 1_000_000
    sequences_per_batch: int = 32
    lr: float = 1e-4
    fvu_weight: float = 0.5  # against the KL term (nats): keeps each layer's own reconstruction (--finetune-fvu-weight)
    k: int = 24
    checkpoint_every: int = 50  # steps
    seed: int = 0


def sequence_batches(handle: ModelHandle, n: int, seed: int, tokens: np.ndarray | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless (tokens, mask of scored positions): fresh games, or random windows of ``tokens``."""
    step = 0
    while True:
        rng_seed = int(np.random.SeedSequence((FINETUNE_SEED_BASE, seed, step)).generate_state(1)[0])
        step += 1
        if tokens is None:
            tb = handle.game.token_batch(handle.game.random_games(n, seed=rng_seed))
            yield torch.from_numpy(tb.tokens), torch.from_numpy(tb.valid)
        else:
            width = min(handle.cfg.n_ctx, len(tokens) - 1)
            starts = np.random.default_rng(rng_seed).integers(0, len(tokens) - width, size=n)
            windows = torch.from_numpy(np.stack([tokens[s : s + width] for s in starts]).astype(np.int64))
            yield windows, torch.ones(windows.shape, dtype=torch.bool)


class ReplacementFinetuner:
    def __init__(self, handle: ModelHandle, transcoders: dict[int, object], cfg: FinetuneConfig, out: Path, scales: dict[int, float], tokens: np.ndarray | None = None):
        self.handle, self.tcs, self.cfg, self.out, self.scales = handle, transcoders, cfg, Path(out), scales
        self.batches = sequence_batches(handle, cfg.sequences_per_batch, cfg.seed, tokens)
        for tc in self.tcs.values():
            tc.train()
        self.params = [p for tc in self.tcs.values() for p in tc.parameters() if p is not getattr(tc, "threshold", None)]
        self.opt = torch.optim.Adam(self.params, lr=cfg.lr)
        self.thresholds = {layer: [0.0, 0] for layer in self.tcs}  # sum and count of the smallest kept activation, last 5 % of steps
        self.step, self.wall, self.tokens_seen = 0, 0.0, 0

    @property
    def steps(self) -> int:
        return max(1, self.cfg.tokens // (self.cfg.sequences_per_batch * self.handle.cfg.n_ctx))

    def _paths(self) -> tuple[Path, Path]:
        return self.out / "finetune.safetensors", self.out / "finetune.json"

    def save_checkpoint(self) -> None:
        weights, meta = self._paths()
        save_file({f"{layer}.{k}": v.detach().clone() for layer, tc in self.tcs.items() for k, v in tc.state_dict().items()}, str(weights))
        meta.write_text(json.dumps({"step": self.step, "wall_time_s": self.wall, "tokens": self.tokens_seen, "thresholds": self.thresholds, "config": asdict(self.cfg)}))

    def resume(self) -> bool:
        weights, meta = self._paths()
        if not (weights.exists() and meta.exists()):
            return False
        info = json.loads(meta.read_text())
        if info.get("config") != asdict(self.cfg):
            raise ValueError(f"{meta} was written with other settings: {info.get('config')}; remove it to start the fine-tune again")
        tensors = load_file(str(weights))
        for layer, tc in self.tcs.items():
            tc.load_state_dict({k.split(".", 1)[1]: v for k, v in tensors.items() if k.split(".", 1)[0] == str(layer)})
        self.step, self.wall, self.tokens_seen = int(info["step"]), float(info["wall_time_s"]), int(info["tokens"])
        self.thresholds = {int(k): list(v) for k, v in info["thresholds"].items()}
        for _ in range(self.step):  # the same batches as an uninterrupted run
            next(self.batches)
        return True

    def _loss(self, tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, float, float, dict[int, float]]:
        k = self.cfg.k
        names = [h for layer in self.tcs for h in hooks_of(layer)]
        with torch.no_grad():
            clean_logits, cache = self.handle.model.run_with_cache(tokens, names_filter=lambda n: n in names)
        kept: dict[int, torch.Tensor] = {}
        smallest: dict[int, float] = {}
        hooks = []
        for layer, tc in self.tcs.items():
            def keep(x, hook=None, layer=layer):
                kept[layer] = x
                return x

            def replace(y, hook=None, layer=layer, tc=tc):
                x = kept[layer][mask]
                acts, low = batch_topk(x @ tc.W_enc + tc.b_enc, k)
                smallest[layer] = float(low)
                out = torch.zeros_like(y)
                out[mask] = acts @ tc.W_dec + tc.b_dec + x @ tc.W_skip.T
                return out

            hook_in, hook_out = hooks_of(layer)
            hooks += [(hook_in, keep), (hook_out, replace)]
        with self.handle.hooked(hooks) as model:
            logits = model(tokens)
        logp_model = F.log_softmax(clean_logits[mask].float(), -1)
        kl = (logp_model.exp() * (logp_model - F.log_softmax(logits[mask].float(), -1))).sum(-1).mean()
        fvus = []
        for layer, tc in self.tcs.items():
            hook_in, hook_out = hooks_of(layer)
            x, y = cache[hook_in][mask].float(), cache[hook_out][mask].float()
            acts, _ = batch_topk(x @ tc.W_enc + tc.b_enc, k)
            out = acts @ tc.W_dec + tc.b_dec + x @ tc.W_skip.T
            fvus.append((out - y).pow(2).sum(-1).mean() / self.scales[layer])
        fvu = torch.stack(fvus).mean()
        return kl + self.cfg.fvu_weight * fvu, float(kl), float(fvu), smallest

    @torch.no_grad()
    def calibrate(self, batches: int = 4) -> dict[int, float]:
        """Each layer's JumpReLU threshold: the smallest activation BatchTopK keeps on the model's
        own MLP inputs (where the attribution graph reads them), averaged over fresh batches, so
        that L0 there is ``k`` on average. The thresholds seen during the fine-tune are not used:
        its last steps move them while the weights settle."""
        names = {hooks_of(layer)[0] for layer in self.tcs}
        found: dict[int, list[float]] = {layer: [] for layer in self.tcs}
        for _ in range(batches):
            tokens, mask = next(self.batches)
            _, cache = self.handle.model.run_with_cache(tokens, names_filter=lambda n: n in names)
            for layer, tc in self.tcs.items():
                x = cache[hooks_of(layer)[0]][mask].float()
                found[layer].append(float(batch_topk(x @ tc.W_enc + tc.b_enc, self.cfg.k)[1]))
        return {layer: float(np.mean(v)) for layer, v in found.items()}

    def train(self, progress: Callable[[str, float], None] | None = None) -> dict:
        for p in self.handle.model.parameters():
            p.requires_grad_(False)  # gradients flow through the model to the transcoders only
        t0 = time.perf_counter() - self.wall
        recent: list[tuple[float, float]] = []
        while self.step < self.steps:
            tokens, mask = next(self.batches)
            loss, kl, fvu, smallest = self._loss(tokens, mask)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            for layer, tc in self.tcs.items():
                unit_decoder_rows(tc)
                if self.step >= self.steps - max(1, self.steps // 20):
                    self.thresholds[layer] = [self.thresholds[layer][0] + smallest[layer], self.thresholds[layer][1] + 1]
            self.step += 1
            self.tokens_seen += int(mask.sum())
            recent = (recent + [(kl, fvu)])[-20:]
            if progress and (self.step % 5 == 0 or self.step == self.steps):
                progress(f"fine-tune: step {self.step:,}/{self.steps:,}, KL {np.mean([r[0] for r in recent]):.4f}, mean FVU {np.mean([r[1] for r in recent]):.3f}", self.step / self.steps)
            if self.step % self.cfg.checkpoint_every == 0 or self.step == self.steps:
                self.wall = time.perf_counter() - t0
                self.save_checkpoint()
        self.wall = time.perf_counter() - t0
        calibrated = self.calibrate()
        for layer, tc in self.tcs.items():
            tc.eval()
            with torch.no_grad():
                tc.threshold.fill_(calibrated[layer])
        return {"wall_time_s": round(self.wall, 1), "steps": self.step, "tokens": self.tokens_seen, "settings": asdict(self.cfg)}
