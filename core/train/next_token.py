"""Train a next-token GPT on a text corpus (the bundled text model: gelu-1l's shape, scaled down).

The run folder holds everything the run depends on, made once at the start: the BPE tokenizer
learned on the training files (``tokenizer.json``), the training and held-out tokens, and
``corpus.json`` naming every file with the digest of its text. Each step's windows are drawn from a
generator seeded by ``(seed, step)``, so a resumed run sees exactly the windows an unbroken one
would have seen. Held-out cross-entropy is measured beside a unigram and a bigram model estimated on
the same training tokens and scored on the same held-out targets.
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from core.devices import bf16_is_fast
from core.models.gpt import GPT, GPTConfig
from core.text.corpus import Document, documents_digest, stdlib_documents, tokenize_documents
from core.text.tokenizer import TextTokenizer, save_tokenizer, train_bpe
from core.train import distributed
from core.train.next_move import CheckpointError, learning_rate, make_optimizer, read_checkpoint, write_checkpoint

TOKENIZER, TRAIN_TOKENS, HELD_OUT_TOKENS, CORPUS = "tokenizer.json", "train_tokens.npy", "heldout_tokens.npy", "corpus.json"
CORPORA = ("stdlib",)


@dataclass
class TextTrainConfig:
    corpus: str = "stdlib"  # CPython's standard library and its documentation prose
    vocab_size: int = 4096
    n_layers: int = 1
    d_model: int = 256
    n_heads: int = 4
    d_mlp: int = 1024
    n_ctx: int = 128
    batch_size: int = 32
    steps: int = 6000
    lr: float = 1e-3
    min_lr_frac: float = 0.1
    warmup_steps: int = 200
    decay_steps: int = 0
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    seed: int = 0
    bf16: bool = True  # bf16 autocast where the device is fast at it (core.devices.bf16_is_fast); float32 elsewhere
    eval_every: int = 500
    eval_tokens: int = 131_072
    checkpoint_every_s: float = 120.0
    threads: int = 0
    device: str = "auto"

    def gpt_config(self, d_vocab: int) -> GPTConfig:
        return GPTConfig(n_layers=self.n_layers, d_model=self.d_model, n_heads=self.n_heads, d_mlp=self.d_mlp, d_vocab=d_vocab, n_ctx=self.n_ctx)


OVERRIDABLE = ("eval_every", "eval_tokens", "checkpoint_every_s", "threads", "steps", "device")


@dataclass
class TextTrainState:
    step: int = 0
    tokens_seen: int = 0
    wall_time_s: float = 0.0
    history: list[dict] = field(default_factory=list)


def corpus_documents(corpus: str) -> tuple[list[Document], list[Document]]:
    """``(train, held-out)`` documents of a named corpus."""
    if corpus == "stdlib":
        return stdlib_documents("train"), stdlib_documents("held-out")
    raise ValueError(f"unknown corpus {corpus!r} (known: {', '.join(CORPORA)})")


def prepare_corpus(run_dir: Path, cfg: TextTrainConfig, progress: Callable[[str, float], None] | None = None) -> None:
    """Learn the tokenizer and write both token files and ``corpus.json`` (once per run)."""
    train, held = corpus_documents(cfg.corpus)
    tok = train_bpe((d.text for d in train), cfg.vocab_size)
    save_tokenizer(tok, run_dir / TOKENIZER)
    tok = TextTokenizer.from_file(run_dir / TOKENIZER)
    for docs, name in ((train, TRAIN_TOKENS), (held, HELD_OUT_TOKENS)):
        np.save(run_dir / name, tokenize_documents(tok, docs, progress=progress).astype(np.int32), allow_pickle=False)
    record = {
        "corpus": cfg.corpus,
        "python": platform.python_version(),
        "train_files": [d.name for d in train],
        "held_out_files": [d.name for d in held],
        "train_sha256": documents_digest(train),
        "held_out_sha256": documents_digest(held),
        "train_characters": sum(len(d.text) for d in train),
        "held_out_characters": sum(len(d.text) for d in held),
        "train_tokens": int(np.load(run_dir / TRAIN_TOKENS).size),
        "held_out_tokens": int(np.load(run_dir / HELD_OUT_TOKENS).size),
        "split": "one file in ten by a sha256 of its relative name is held out",
    }
    (run_dir / CORPUS).write_text(json.dumps(record, indent=1) + "\n")


def step_windows(tokens: np.ndarray, cfg: TextTrainConfig, step: int) -> torch.Tensor:
    """The step's ``(batch, n_ctx + 1)`` windows at starts drawn from ``(seed, step)``."""
    rng = np.random.default_rng((cfg.seed, step))
    starts = rng.integers(0, len(tokens) - cfg.n_ctx - 1, size=cfg.batch_size)
    return torch.from_numpy(np.stack([tokens[s : s + cfg.n_ctx + 1] for s in starts]).astype(np.int64))


def eval_windows(tokens: np.ndarray, n_ctx: int, n_tokens: int) -> torch.Tensor:
    """Non-overlapping held-out windows of ``n_ctx + 1`` tokens from the start, about ``n_tokens`` targets."""
    n = min(len(tokens) // (n_ctx + 1), max(1, n_tokens // n_ctx))
    return torch.from_numpy(tokens[: n * (n_ctx + 1)].reshape(n, n_ctx + 1).astype(np.int64))


def ngram_baselines(train: np.ndarray, windows: torch.Tensor, vocab: int) -> dict:
    """Cross-entropy (nats per token) of a unigram and a bigram model of the training tokens on
    the held-out windows' targets (every target has its previous token in the window).

    Unigram: add-one counts. Bigram: maximum-likelihood counts interpolated with the unigram,
    ``lam * p(b | a) + (1 - lam) * p(b)``, with ``lam`` chosen on these held-out targets from a grid,
    the baseline's best case (so beating it means something)."""
    uni = (np.bincount(train, minlength=vocab) + 1.0) / (len(train) + vocab)
    prev, nxt = windows[:, :-1].reshape(-1).numpy(), windows[:, 1:].reshape(-1).numpy()
    pair_codes = train[:-1].astype(np.int64) * vocab + train[1:]
    codes, counts = np.unique(pair_codes, return_counts=True)
    first = np.bincount(train[:-1], minlength=vocab).astype(np.float64)
    want = prev.astype(np.int64) * vocab + nxt
    where = np.searchsorted(codes, want).clip(max=len(codes) - 1)
    pair = np.where(codes[where] == want, counts[where], 0).astype(np.float64)
    cond = np.divide(pair, first[prev], out=np.zeros_like(pair), where=first[prev] > 0)
    best = min((float(-np.log(lam * cond + (1 - lam) * uni[nxt]).mean()), lam) for lam in np.linspace(0.05, 0.95, 19))
    return {"unigram_ce": float(-np.log(uni[nxt]).mean()), "bigram_ce": best[0], "bigram_lambda": round(float(best[1]), 2), "targets": int(len(nxt))}


def window_ce(forward: Callable[[torch.Tensor], torch.Tensor], windows: torch.Tensor, batch: int = 64) -> float:
    """Mean next-token cross-entropy over the windows (every position predicts the next token)."""
    total, count = 0.0, 0
    for i in range(0, len(windows), batch):
        w = windows[i : i + batch]
        logits = forward(w[:, :-1]).float()
        total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1), reduction="sum"))
        count += w[:, 1:].numel()
    return total / max(count, 1)


class TextTrainer:
    CHECKPOINT = "checkpoint.pt"

    def __init__(self, cfg: TextTrainConfig, run_dir: str | Path, overrides: dict | None = None, progress: Callable[[str, float], None] | None = None):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        ckpt = self.run_dir / self.CHECKPOINT
        overrides = {k: v for k, v in (overrides or {}).items() if k in OVERRIDABLE}
        saved = None
        if ckpt.exists():
            saved = read_checkpoint(ckpt)
            old = TextTrainConfig(**saved["config"])
            done = json.loads(saved["state_json"])["step"]
            steps = overrides.get("steps", old.steps)
            if steps < max(done, old.steps):
                raise distributed.SettingError(f"{run_dir}: --steps can only extend a run ({old.steps} planned, {done} done)")
            if steps != old.steps and not old.decay_steps:
                overrides["decay_steps"] = old.steps
            cfg = TextTrainConfig(**{**saved["config"], **overrides})
        else:
            cfg = TextTrainConfig(**{**asdict(cfg), **overrides})
        self.cfg = cfg
        if not (self.run_dir / CORPUS).exists():
            if saved is not None:
                raise CheckpointError(f"{run_dir}: {CORPUS} is missing beside the checkpoint; the run's tokens cannot be rebuilt safely")
            prepare_corpus(self.run_dir, cfg, progress)
        self.tokenizer = TextTokenizer.from_file(self.run_dir / TOKENIZER)
        self.train_tokens = np.load(self.run_dir / TRAIN_TOKENS, allow_pickle=False)
        self.held_tokens = np.load(self.run_dir / HELD_OUT_TOKENS, allow_pickle=False)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = distributed.resolve_device(cfg.device, 0)
        self.autocast_bf16 = cfg.bf16 and bf16_is_fast(self.device)
        torch.manual_seed(cfg.seed)
        self.model = GPT(cfg.gpt_config(self.tokenizer.vocab_size)).to(self.device)
        self.optimizer = make_optimizer(self.model, cfg)
        self.state = TextTrainState()
        if saved is not None:
            self.model.load_state_dict(saved["model"])
            self.optimizer.load_state_dict(saved["optimizer"])
            self.state = TextTrainState(**json.loads(saved["state_json"]))
        self.eval_windows = eval_windows(self.held_tokens, cfg.n_ctx, cfg.eval_tokens)

    def save(self) -> None:
        payload = {
            "config": asdict(self.cfg),
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "state_json": json.dumps(asdict(self.state)),
        }
        write_checkpoint(self.run_dir, self.CHECKPOINT, payload, self.state.step)

    def evaluate(self) -> float:
        self.model.eval()
        try:
            with torch.inference_mode():
                return window_ce(lambda t: self.model(t.to(self.device)).cpu(), self.eval_windows)
        finally:
            self.model.train()

    def train(self, until_step: int | None = None, progress: Callable[[int, int, dict], None] | None = None) -> TextTrainState:
        cfg, state = self.cfg, self.state
        until = min(cfg.steps, until_step or cfg.steps)
        self.model.train()
        last_ckpt = time.monotonic()
        while state.step < until:
            t0 = time.monotonic()
            for group in self.optimizer.param_groups:
                group["lr"] = learning_rate(cfg, state.step)
            w = step_windows(self.train_tokens, cfg, state.step).to(self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast_bf16):
                logits = self.model(w[:, :-1])
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.optimizer.step()
            state.step += 1
            state.tokens_seen += cfg.batch_size * cfg.n_ctx
            now = time.monotonic()
            state.wall_time_s += now - t0
            info = {"loss": loss.item(), "tokens_per_s": cfg.batch_size * cfg.n_ctx / max(now - t0, 1e-9)}
            if state.step % cfg.eval_every == 0 or state.step == until:
                info["held_out_ce"] = self.evaluate()
                state.history.append({"step": state.step, "tokens_seen": state.tokens_seen, "loss": round(info["loss"], 5), "held_out_ce": round(info["held_out_ce"], 5)})
            if progress:
                progress(state.step, until, info)
            if now - last_ckpt > cfg.checkpoint_every_s or state.step == until:
                self.save()
                last_ckpt = now
        return state


def export_text_run(trainer: TextTrainer, out_dir: str | Path, name: str, command: str, shard_tokens: int = 1_000_000) -> dict:
    """The bundled text model: weights, ``tokenizer.json``, a held-out token shard for the app's
    feature index, and a card whose cross-entropy is measured on the exported model."""
    import shutil

    from safetensors.torch import save_file

    from core.checksums import sha256_of
    from core.models.bundle import save_bundle
    from core.models.convert import gpt_to_tl_state_dict, tl_config_for
    from core.models.registry import load_model

    cfg, out = trainer.cfg, Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(trainer.run_dir / TOKENIZER, out / TOKENIZER)
    shard = torch.from_numpy(trainer.held_tokens[:shard_tokens].astype(np.int32))
    save_file({"tokens": shard}, str(out / HELD_OUT_SHARD))
    corpus = json.loads((trainer.run_dir / CORPUS).read_text())
    config = {
        "name": name,
        "kind": "text",
        "tokenizer": TOKENIZER,
        "held_out_shard": HELD_OUT_SHARD,
        "tl_config": tl_config_for(cfg.gpt_config(trainer.tokenizer.vocab_size)),
        "files_sha256": {TOKENIZER: sha256_of(out / TOKENIZER), HELD_OUT_SHARD: sha256_of(out / HELD_OUT_SHARD)},
    }
    weights = {k: v.detach().cpu() for k, v in gpt_to_tl_state_dict(trainer.model).items()}
    card = {
        "name": name,
        "kind": "text",
        "description": f"{cfg.n_layers}-layer, {cfg.d_model}-wide GELU text model (gelu-1l's shape, scaled down), trained by BoardLens on CPython's standard library and its documentation prose.",
        "command": command,
        "train_config": asdict(cfg),
        "parameters": trainer.model.n_params(),
        "steps": trainer.state.step,
        "tokens_seen": trainer.state.tokens_seen,
        "wall_time_s": round(trainer.state.wall_time_s, 1),
        "history": trainer.state.history,
        "corpus": {k: v for k, v in corpus.items() if not k.endswith("_files")} | {"held_out_files": corpus["held_out_files"], "train_file_count": len(corpus["train_files"])},
        "exported": time.strftime("%Y-%m-%d %H:%M:%S"),
        "hardware": f"{platform.machine()}, {trainer.device.type}{', bf16 autocast' if trainer.autocast_bf16 else ''}, torch {torch.__version__}, Python {sys.version.split()[0]}",
    }
    save_bundle(out, config, weights, card)
    handle = load_model(str(out))
    windows = trainer.eval_windows
    ce = window_ce(handle.forward, windows)
    card["eval"] = {
        "held_out_ce": ce,
        **ngram_baselines(trainer.train_tokens, windows, trainer.tokenizer.vocab_size),
        "held_out_windows": int(len(windows)),
        "window": cfg.n_ctx,
        "bits_per_token": ce / math.log(2),
    }
    save_bundle(out, config, weights, card)
    return card


HELD_OUT_SHARD = "heldout_tokens.safetensors"
