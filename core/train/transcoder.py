"""Per-layer skip transcoders: each MLP's input (after its LayerNorm, ``blocks.L.ln2.hook_normalized``)
to its output (``blocks.L.hook_mlp_out``), trained on the model's own stream of fresh games (a
text model: random windows of its corpus).

Two kinds, both loaded by ``sae_lens.SAE.load_from_disk`` (``cfg.json`` + ``sae_weights.safetensors``):

- ``batchtopk`` (the default): BatchTopK training (Bussmann et al. 2024): a batch keeps its
  ``k × batch`` largest activations, so the *average* L0 is ``k`` while one token may use more
  features than another. Decoder rows stay at unit norm, so activations are comparable across
  features. Saved as SAELens's ``JumpReLUSkipTranscoder`` with one threshold for every feature:
  the mean over the last 5 % of the steps of the smallest activation a batch kept, which gives
  held-out L0 close to ``k``.
- ``l1``: SAELens's ``SkipTranscoder`` (ReLU) with an L1 penalty on each activation times its
  decoder row's norm, scaled so that the reconstruction term is the batch's fraction of variance
  unexplained (the same coefficient means the same trade-off at every layer); the penalty ramps
  up over the first steps so features form before they are pushed to zero. Measured on othello8:
  the per-layer L0 cannot be set in advance (layer 3 came out at 35), and the replacement model
  recovered 70 % of the loss, against the BatchTopK set's figures in its card.

Both compute ``out = act(x W_enc + b_enc) W_dec + b_dec + x W_skip^T``. Training checkpoints
(weights, Adam's moments, the step and the stream's position) go to ``checkpoint.safetensors`` +
``checkpoint.json`` beside the result, and a run started again resumes from them.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from core.interp.shared.activations import token_activations
from core.models.handle import ModelHandle
from core.train.sae import ActivationStream
from core.train.transcoder_basics import TRANSCODER_SEED_BASE, batch_topk, hooks_of, unit_decoder_rows  # noqa: F401 (re-exported)
from core.train.transcoder_labels import card_json


@dataclass
class TranscoderTrainConfig:
    layer: int = 0
    kind: str = "batchtopk"  # or "l1"
    d_transcoder: int = 2048
    k: int = 24  # batchtopk: mean active features per token
    l1_coefficient: float = 0.08  # on sum_i f_i |W_dec_i| / RMS(out); measured on othello8 L2 at 300k tokens: 0.05 -> L0 53, FVU 0.16; 0.01 -> L0 181, FVU 0.08
    lr: float = 1e-3
    batch_size: int = 1024
    total_tokens: int = 2_000_000
    buffer_tokens: int = 65_536
    games_per_refill: int = 250
    l1_warmup: float = 0.05  # share of the steps over which the penalty ramps up from 0
    checkpoint_every: int = 200  # steps
    seed: int = 0
    device: str = "cpu"
    bf16_activations: bool = True


class PairStream(ActivationStream):
    """Shuffled batches of (MLP input, MLP output) pairs: the two hooks side by side in one buffer,
    so a pair is shuffled as one row."""

    def __init__(self, handle: ModelHandle, layer: int, batch_size: int, buffer_tokens: int, games_per_refill: int, seed: int = 0, bf16: bool = False, tokens: np.ndarray | None = None):
        super().__init__(handle, hooks_of(layer)[1], batch_size, buffer_tokens, games_per_refill, seed, bf16)
        self.hooks = hooks_of(layer)
        self.tokens = tokens

    def _activations(self, seed: int) -> torch.Tensor:
        seed = int(np.random.SeedSequence((TRANSCODER_SEED_BASE, seed)).generate_state(1)[0])
        if self.tokens is None:
            acts = token_activations(self.handle, self.handle.game.random_games(self.games_per_refill, seed=seed), list(self.hooks))
        else:
            width = min(self.handle.cfg.n_ctx, len(self.tokens) - 1)
            starts = np.random.default_rng(seed).integers(0, len(self.tokens) - width, size=self.games_per_refill)
            windows = torch.from_numpy(np.stack([self.tokens[s : s + width] for s in starts]).astype(np.int64))
            raw = self.handle.activations(windows, list(self.hooks))
            acts = {h: raw[h].reshape(-1, raw[h].shape[-1]).float() for h in self.hooks}
        return torch.cat([acts[h].float() for h in self.hooks], dim=-1)


def make_transcoder(d_model: int, cfg: TranscoderTrainConfig, hook_in: str):
    """A SAELens skip transcoder (float32, on the CPU) with encoder = decoder^T at init, the skip
    connection at 0: decoder rows of norm 0.1 for ``l1``, of norm 1 for ``batchtopk`` (kept there)."""
    from sae_lens import JumpReLUSkipTranscoder, JumpReLUSkipTranscoderConfig, SkipTranscoder, SkipTranscoderConfig
    from sae_lens.saes.sae import SAEMetadata

    if cfg.kind not in ("batchtopk", "l1"):
        raise ValueError(f"unknown transcoder kind {cfg.kind!r}: batchtopk or l1")
    torch.manual_seed(cfg.seed)
    kind, config = (JumpReLUSkipTranscoder, JumpReLUSkipTranscoderConfig) if cfg.kind == "batchtopk" else (SkipTranscoder, SkipTranscoderConfig)
    tc = kind(config(d_in=d_model, d_sae=cfg.d_transcoder, d_out=d_model, dtype="float32", device="cpu", apply_b_dec_to_input=False, metadata=SAEMetadata(hook_name=hook_in)))
    with torch.no_grad():
        w = torch.randn(cfg.d_transcoder, d_model)
        w = (1.0 if cfg.kind == "batchtopk" else 0.1) * w / w.norm(dim=1, keepdim=True)
        tc.W_dec.copy_(w)
        tc.W_enc.copy_(w.T)
    return tc


def losses(tc, x: torch.Tensor, y: torch.Tensor, scale: float, l1: float, k: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(loss, FVU of the batch, activations, smallest kept activation): FVU against ``scale`` (the
    output's variance, summed over dimensions); with ``k`` the activations are the batch's top
    ``k × tokens``, otherwise ReLU plus ``l1`` times the decoder-norm-weighted activations over
    the square root of ``scale``."""
    smallest = None
    if k:
        acts, smallest = batch_topk(x @ tc.W_enc + tc.b_enc, k)
    else:
        acts = tc.encode(x)
    out = acts @ tc.W_dec + tc.b_dec + x @ tc.W_skip.T
    fvu = (out - y).pow(2).sum(-1).mean() / scale
    if k:
        return fvu, fvu, acts, smallest
    sparsity = (acts * tc.W_dec.norm(dim=1)).sum(-1).mean() / scale**0.5
    return fvu + l1 * sparsity, fvu, acts, smallest


class TranscoderTrainer:
    """One layer's transcoder: train, checkpoint, resume, save in SAELens's format."""

    def __init__(self, handle: ModelHandle, cfg: TranscoderTrainConfig, out: Path, tokens: np.ndarray | None = None):
        self.handle, self.cfg, self.out = handle, cfg, Path(out)
        self.stream = PairStream(handle, cfg.layer, cfg.batch_size, cfg.buffer_tokens, cfg.games_per_refill, cfg.seed, cfg.bf16_activations, tokens)
        d = handle.cfg.d_model
        self.device = torch.device(cfg.device)
        self.tc = make_transcoder(d, cfg, hooks_of(cfg.layer)[0]).to(self.device)  # trains where the model runs
        self.opt = torch.optim.Adam(self.tc.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
        self.step = 0
        self.threshold = [0.0, 0]  # batchtopk: sum and count of the smallest kept activation over the last 5 % of steps
        self.last_fired = torch.zeros(cfg.d_transcoder, dtype=torch.long)
        first = next(self.stream)
        y = first[:, d:]
        self.scale = float((y - y.mean(0)).pow(2).sum(-1).mean())  # the output's variance: FVU's denominator
        with torch.no_grad():
            self.tc.b_dec.copy_(self.stream.buffer_mean()[d:].to(self.device))  # the output's mean: the features need not learn it
        self._first = first
        self.wall = 0.0

    @property
    def steps(self) -> int:
        return max(1, self.cfg.total_tokens // self.cfg.batch_size)

    def _checkpoint_paths(self) -> tuple[Path, Path]:
        return self.out / "checkpoint.safetensors", self.out / "checkpoint.json"

    def save_checkpoint(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        tensors = {f"param.{k}": v.detach().cpu().clone() for k, v in self.tc.state_dict().items()}
        for i, p in enumerate(self.tc.parameters()):
            state = self.opt.state.get(p, {})
            for name in ("exp_avg", "exp_avg_sq"):
                if name in state:
                    tensors[f"adam.{i}.{name}"] = state[name].cpu().clone()
        tensors["last_fired"] = self.last_fired.clone()
        weights, meta = self._checkpoint_paths()
        save_file(tensors, str(weights))
        adam_step = next((float(s["step"]) for s in self.opt.state.values() if "step" in s), 0.0)
        meta.write_text(json.dumps({"step": self.step, "threshold": self.threshold, "adam_step": adam_step, "scale": self.scale, "wall_time_s": self.wall, "refills": self.stream.refills, "config": asdict(self.cfg)}))

    def resume(self) -> bool:
        """Load the checkpoint if there is one for this configuration; True if it did."""
        weights, meta = self._checkpoint_paths()
        if not (weights.exists() and meta.exists()):
            return False
        info = json.loads(meta.read_text())
        if info.get("config") != asdict(self.cfg):
            raise ValueError(f"{meta} was written with other settings: {info.get('config')}; remove it or train into another folder")
        tensors = load_file(str(weights), device=str(self.device))
        self.tc.load_state_dict({k[len("param.") :]: v for k, v in tensors.items() if k.startswith("param.")})
        for i, p in enumerate(self.tc.parameters()):
            if f"adam.{i}.exp_avg" in tensors:
                self.opt.state[p] = {"step": torch.tensor(info["adam_step"]), "exp_avg": tensors[f"adam.{i}.exp_avg"], "exp_avg_sq": tensors[f"adam.{i}.exp_avg_sq"]}
        self.last_fired = tensors["last_fired"].cpu()
        self.step, self.scale, self.wall = int(info["step"]), float(info["scale"]), float(info["wall_time_s"])
        stored = info.get("threshold", [0.0, 0])
        self.threshold = list(stored) if isinstance(stored, list) else [float(stored), 1]  # a single value: an average already taken
        self.stream.refills = int(info["refills"])  # fresh games from where the run stopped
        self._first = None
        return True

    def train(self, progress: Callable[[str, float], None] | None = None) -> dict:
        d = self.handle.cfg.d_model
        cfg = self.cfg
        warm = max(1, int(cfg.l1_warmup * self.steps))
        t0 = time.perf_counter() - self.wall
        fvu_recent: list[float] = []
        while self.step < self.steps:
            batch = self._first if self._first is not None else next(self.stream)
            self._first = None
            batch = batch.to(self.device)
            x, y = batch[:, :d], batch[:, d:]
            topk = cfg.k if cfg.kind == "batchtopk" else 0
            loss, fvu, acts, smallest = losses(self.tc, x, y, self.scale, cfg.l1_coefficient * min(1.0, (self.step + 1) / warm), topk)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            if topk:
                unit_decoder_rows(self.tc)
                if self.step >= self.steps - max(1, self.steps // 20):
                    self.threshold = [self.threshold[0] + float(smallest), self.threshold[1] + 1]
            self.step += 1
            fired = (acts > 0).any(0).detach().cpu()
            self.last_fired[fired] = self.step
            fvu_recent = (fvu_recent + [fvu.item()])[-50:]
            if progress and (self.step % 10 == 0 or self.step == self.steps):
                l0 = float((acts > 0).float().sum(-1).mean())
                progress(f"layer {cfg.layer}: step {self.step:,}/{self.steps:,}, FVU {np.mean(fvu_recent):.3f}, L0 {l0:.1f}", self.step / self.steps)
            if self.step % cfg.checkpoint_every == 0 or self.step == self.steps:
                self.wall = time.perf_counter() - t0
                self.save_checkpoint()
        self.wall = time.perf_counter() - t0
        self.tc.to("cpu")  # measured and saved on the CPU, like every result
        if cfg.kind == "batchtopk":
            with torch.no_grad():
                self.tc.threshold.fill_(self.threshold[0] / max(self.threshold[1], 1))
        return {"wall_time_s": round(self.wall, 1), "steps": self.step, "tokens": self.step * cfg.batch_size, "dead_window_steps": min(self.step, 1000)}

    def dead(self, window: int = 1000) -> float:
        """The share of features that did not fire over the last ``window`` steps."""
        return float((self.last_fired <= self.step - min(window, self.step)).float().mean())

    def save(self) -> None:
        """The transcoder in SAELens's format (``cfg.json`` + ``sae_weights.safetensors``)."""
        self.out.mkdir(parents=True, exist_ok=True)
        self.tc.save_model(str(self.out))


@torch.no_grad()
def evaluate(handle: ModelHandle, tc, layer: int, games: np.ndarray | None = None, windows: torch.Tensor | None = None) -> dict:
    """FVU of the MLP's output, L0 and the share of features that never fire, on held-out games
    (or text windows)."""
    hook_in, hook_out = hooks_of(layer)
    if windows is not None:
        raw = handle.activations(windows, [hook_in, hook_out])
        x, y = (raw[h].reshape(-1, raw[h].shape[-1]).float() for h in (hook_in, hook_out))
    else:
        acts = token_activations(handle, games, [hook_in, hook_out])
        x, y = acts[hook_in], acts[hook_out]
    f = tc.encode(x)
    out = tc.decode(f) + x @ tc.W_skip.T
    fvu = float((out - y).pow(2).sum() / (y - y.mean(0)).pow(2).sum())
    return {"layer": layer, "fvu": round(fvu, 4), "l0": round(float((f > 0).float().sum(-1).mean()), 2), "dead": round(float(((f > 0).sum(0) == 0).float().mean()), 4), "tokens": len(x)}


def train_layers(handle: ModelHandle, out: Path, layers: list[int], settings: dict, command: str, eval_games: int = 200,
                 progress: Callable[[str, float], None] | None = None, tokens: np.ndarray | None = None, held_out: torch.Tensor | None = None,
                 finetune=None) -> dict:
    """Train (or resume) a transcoder for each of ``layers`` into ``out/L<n>/`` and keep
    ``out/card.json`` up to date after each: the command, the settings, and per layer its
    training time and held-out FVU, L0 and dead share (``metrics.layers``). A text model trains on
    ``tokens`` and is measured on ``held_out`` windows; a board game's on fresh and held-out games.
    With ``finetune`` (a ``FinetuneConfig``) a full BatchTopK set is then fine-tuned together
    (``transcoder_finetune``); the card keeps the replacement's scores before and after."""
    out = Path(out)
    card_path = out / "card.json"
    card = json.loads(card_path.read_text()) if card_path.exists() else {}
    kind = "jumprelu_skip_transcoder" if settings.get("kind", "batchtopk") == "batchtopk" else "skip_transcoder"
    card.update({"model": handle.name, "command": command, "settings": settings, "kind": kind, "hooks": "blocks.L.ln2.hook_normalized -> blocks.L.hook_mlp_out"})
    done = {m["layer"]: m for m in card.get("metrics", {}).get("layers", [])}
    training = card.get("training", {})
    eval_data = {"windows": held_out} if held_out is not None else {"games": handle.game.random_games(eval_games, seed=TRANSCODER_SEED_BASE + 1)}
    for layer in layers:
        cfg = TranscoderTrainConfig(layer=layer, **settings)
        trainer = TranscoderTrainer(handle, cfg, out / f"L{layer}", tokens)
        resumed = trainer.resume()
        if progress:
            progress(f"layer {layer}: {'resuming at step ' + str(trainer.step) if resumed else 'starting'}", trainer.step / trainer.steps)
        stats = trainer.train(progress)
        trainer.save()
        metrics = evaluate(handle, trainer.tc, layer, **eval_data)
        metrics["dead_in_training"] = round(trainer.dead(), 4)
        done[layer] = metrics
        training[str(layer)] = stats
        card["training"] = training
        card.setdefault("metrics", {})["layers"] = [done[k] for k in sorted(done)]
        out.mkdir(parents=True, exist_ok=True)
        card_path.write_text(card_json(card))
    if len(done) == handle.cfg.n_layers:  # a full set: how well it replaces the model
        from core.interp.circuits.replacement import load_transcoders

        def score() -> dict:
            return replacement_metrics(handle, out, eval_data, progress)

        if finetune is not None and "finetune" not in card:
            card["metrics"]["before_finetune"] = score()
            card_path.write_text(card_json(card))
            card["finetune"] = finetune_set(handle, out, finetune, progress, tokens)
            for layer in range(handle.cfg.n_layers):
                tc = load_transcoders(out, handle.cfg.n_layers)[layer]
                done[layer] = {**done[layer], **evaluate(handle, tc, layer, **eval_data)}
            card["metrics"]["layers"] = [done[k] for k in sorted(done)]
        card["metrics"].update(score())
        card_path.write_text(card_json(card))
    return card


def replacement_metrics(handle: ModelHandle, out: Path, eval_data: dict, progress=None) -> dict:
    """The card's replacement figures for the full set in ``out``: cross-entropy recovered, top-1
    legal rates of the replacement and the model (PGN: whole moves judged by python-chess)."""
    from core.interp.circuits.replacement import load_transcoders, replacement_scores

    if progress:
        progress("scoring the replacement model (every MLP replaced) on held-out data", 1.0)
    tcs = load_transcoders(out, handle.cfg.n_layers)
    scores = replacement_scores(handle, tcs, **eval_data)
    legal = (lambda v: None if np.isnan(v) else round(v, 4))  # noqa: E731 (text: no rules, no legal rate)
    result = {
        "replacement_ce_recovered": round(scores.ce_recovered, 4), "replacement_top1_legal": legal(scores.top1_legal_replacement),
        "model_top1_legal": legal(scores.top1_legal_model), "ce_model": round(scores.ce_model, 4), "ce_replacement": round(scores.ce_replacement, 4),
        "ce_mlps_mean_ablated": round(scores.ce_mean_ablated, 4), "scored_positions": scores.positions,
    }
    if handle.kind != "text" and handle.game.move_end_token is not None:
        result.update(whole_move_scores(handle, tcs, eval_data["games"][:WHOLE_MOVE_GAMES], result))
    return result


WHOLE_MOVE_GAMES = 50  # held-out games whose every move the model and its replacement write greedily


def whole_move_scores(handle: ModelHandle, transcoders: dict[int, object], games: np.ndarray, per_token: dict) -> dict:
    """A move written in several tokens (PGN): the top-1 legal rate is the share of whole moves,
    written greedily by the model and by its replacement, that python-chess accepts; the
    per-token rates stay as ``*_next_char_legal``."""
    from core.interp.circuits.replacement import replacement_hooks
    from core.interp.shared.move_legality import whole_move_legality

    model = whole_move_legality(handle, games)
    replaced = whole_move_legality(handle, games, hooks=replacement_hooks(transcoders))
    return {
        "replacement_top1_legal": round(replaced["whole_move_legal"], 4), "model_top1_legal": round(model["whole_move_legal"], 4),
        "replacement_next_char_legal": per_token["replacement_top1_legal"], "model_next_char_legal": per_token["model_top1_legal"],
        "whole_moves_scored": model["positions"], "whole_move_games": int(len(games)),
    }


def finetune_set(handle: ModelHandle, out: Path, cfg, progress, tokens: np.ndarray | None) -> dict:
    """Fine-tune the set in ``out`` (resuming a checkpoint), save every layer over its per-layer
    result, and return the fine-tune's record for the card."""
    from core.interp.circuits.replacement import load_transcoders
    from core.train.transcoder_finetune import ReplacementFinetuner

    tcs = load_transcoders(out, handle.cfg.n_layers)
    scales = {layer: float(json.loads((out / f"L{layer}" / "checkpoint.json").read_text())["scale"]) for layer in tcs}
    tuner = ReplacementFinetuner(handle, tcs, cfg, out, scales, tokens)
    tuner.resume()
    record = tuner.train(progress)
    for layer, tc in tcs.items():
        tc.save_model(str(out / f"L{layer}"))
    return record


def command(args, command_line: str) -> None:
    """``python -m core.train transcoder MODEL OUT --layer L|all …`` (its flags: ``core/train/__main__.py``)."""
    from tqdm import tqdm

    from core.models.registry import load_model
    from core.train.distributed import SettingError, resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = str(resolve_device(args.device))
    handle = load_model(args.model, device=device)
    n = handle.cfg.n_layers
    if args.layer != "all" and not (args.layer.isdigit() and int(args.layer) < n):
        raise SettingError(f"--layer must be all or a layer number from 0 to {n - 1}")
    layers = list(range(n)) if args.layer == "all" else [int(args.layer)]
    if args.kind not in ("batchtopk", "l1"):
        raise SettingError("--kind must be batchtopk or l1")
    settings = {"kind": args.kind, "k": args.k, "d_transcoder": args.d_transcoder, "l1_coefficient": args.l1, "lr": args.lr, "total_tokens": args.tokens, "batch_size": args.batch_size, "seed": args.seed, "device": device}
    tokens = held = None
    if handle.kind == "text":
        from core.text.corpus import cached_tokens, stdlib_documents
        from core.text.shard import bundled_shard, shard_windows

        tokens = cached_tokens(handle.tokenizer, stdlib_documents("train"))
        shard = bundled_shard(handle)
        shard = shard if shard is not None else cached_tokens(handle.tokenizer, stdlib_documents("held-out"))
        held = torch.from_numpy(shard_windows(shard, handle.cfg.n_ctx, args.eval_games))
    bar = tqdm(total=1.0, bar_format="{l_bar}{bar}| {desc}")

    def progress(text: str, fraction: float) -> None:
        bar.set_description_str(text, refresh=False)
        bar.n = fraction
        bar.refresh()

    finetune = None
    if args.kind == "batchtopk" and args.finetune_tokens > 0:
        from core.train.transcoder_finetune import FinetuneConfig

        finetune = FinetuneConfig(tokens=args.finetune_tokens, k=args.k, seed=args.seed, fvu_weight=args.finetune_fvu_weight)
    if not args.card_only:
        card = train_layers(handle, Path(args.out_dir), layers, settings, command_line, args.eval_games, progress, tokens, held, finetune)
    elif all((Path(args.out_dir) / f"L{k}" / "cfg.json").exists() for k in range(n)):

        card = json.loads((Path(args.out_dir) / "card.json").read_text())
        eval_data = {"windows": held} if held is not None else {"games": handle.game.random_games(args.eval_games, seed=TRANSCODER_SEED_BASE + 1)}
        card.setdefault("metrics", {}).update(replacement_metrics(handle, Path(args.out_dir), eval_data, progress))
        (Path(args.out_dir) / "card.json").write_text(card_json(card))
    else:
        raise SettingError(f"--card-only needs a finished set (every layer) in {args.out_dir}")
    if handle.kind != "text" and all((Path(args.out_dir) / f"L{k}" / "cfg.json").exists() for k in range(n)):
        from core.train.transcoder_labels import write_labels

        card = write_labels(handle, Path(args.out_dir), progress)
    bar.close()
    print(json.dumps(card["metrics"], indent=2))
