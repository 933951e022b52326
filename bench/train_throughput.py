"""Training throughput: BoardLens's trainer vs the same architecture trained as a HookedTransformer.

    python bench/train_throughput.py [--size 8 --n-layers 6 --d-model 256 --batch-size 256 --steps 8]

Both sides train on the same fresh games (``make_batch``), with the same loss and optimiser
(AdamW, grad clipping). Ours runs ``Trainer.train`` (fused-QKV GPT, explicit matmul-softmax attention,
bf16 autocast where enabled); the references train a ``HookedTransformer`` in float32 and under the
same bf16 autocast. Prints tokens/s of each, the ratio against the faster reference (goal >= 1.5x)
and the share of our step time spent waiting for games (they are made in a background thread).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core.models.convert import build_hooked_transformer, tl_config_for  # noqa: E402
from core.train.next_move import TrainConfig, Trainer, loss_fn, make_batch, make_optimizer  # noqa: E402


def time_ours(cfg: TrainConfig, warmup: int, steps: int) -> tuple[float, float]:
    """Tokens/s and generation share of ``Trainer.train`` over ``steps`` steps after a warm-up."""
    with tempfile.TemporaryDirectory() as run:
        trainer = Trainer(cfg, run)
        trainer.train(until_step=warmup)
        infos = []
        t0 = time.perf_counter()
        trainer.train(until_step=warmup + steps, progress=lambda step, total, info: infos.append(info))
        elapsed = time.perf_counter() - t0
    tokens = sum(int(make_batch(cfg, s)[2].sum()) for s in range(warmup, warmup + steps))
    return tokens / elapsed, infos[-1]["gen_share"]


def time_hooked(cfg: TrainConfig, warmup: int, steps: int, bf16: bool) -> float:
    """Tokens/s of the same training loop on a ``HookedTransformer`` of the same architecture."""
    torch.manual_seed(cfg.seed)
    model = build_hooked_transformer(tl_config_for(cfg.gpt_config()))
    model.train()
    optimizer = make_optimizer(model, cfg)
    tokens_done, t0 = 0, 0.0
    for step in range(warmup + steps):
        if step == warmup:
            tokens_done, t0 = 0, time.perf_counter()
        tokens, target, valid = make_batch(cfg, step)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(tokens)
        loss = loss_fn(logits, target, valid)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        tokens_done += int(valid.sum())
    return tokens_done / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=8)
    parser.add_argument("--n-layers", type=int, default=6)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--n-heads", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--compile", type=int, default=1, help="1: our trainer uses torch.compile (its warm-up covers compiling)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = TrainConfig(
        size=args.size,
        n_layers=args.n_layers,
        d_model=args.d_model,
        n_heads=args.n_heads,
        d_mlp=4 * args.d_model,
        batch_size=args.batch_size,
        eval_every=10**9,
        checkpoint_every_s=10**9,
        compile=bool(args.compile),
    )
    print(f"{cfg.size}x{cfg.size}, {cfg.n_layers} layers x {cfg.d_model}, batch {cfg.batch_size}, {args.steps} timed steps, torch threads {torch.get_num_threads()}")
    ours, gen_share = time_ours(cfg, args.warmup, args.steps)
    print(f"  BoardLens trainer (bf16={cfg.bf16}, compile={cfg.compile}): {ours:9.0f} tokens/s   waiting for games {gen_share:.1%} of step time (made in a background thread)")
    ht32 = time_hooked(cfg, args.warmup, args.steps, bf16=False)
    print(f"  HookedTransformer float32:              {ht32:9.0f} tokens/s")
    ht16 = time_hooked(cfg, args.warmup, args.steps, bf16=True)
    print(f"  HookedTransformer bf16 autocast:        {ht16:9.0f} tokens/s")
    best = max(ht32, ht16)
    print(f"speed-up vs the faster HookedTransformer run: {ours / best:.2f}x (goal >= 1.5x); vs float32: {ours / ht32:.2f}x")


if __name__ == "__main__":
    main()
