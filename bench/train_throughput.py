"""Training throughput: BoardLens's trainer vs the same architecture trained as a HookedTransformer.

    python bench/train_throughput.py [--size 8 --n-layers 6 --d-model 256 --batch-size 256 --steps 8]
    python bench/train_throughput.py --device cuda --n-layers 8 --d-model 512 --batch-size 512 --workers 0 4 8
    python bench/train_throughput.py --game chess --n-ctx 256 --n-layers 8 --d-model 256 --batch-size 64

Both sides train on the same fresh games (``make_batch``), with the same loss and optimiser
(AdamW, grad clipping). Ours runs ``Trainer.train`` (fused-QKV GPT, explicit matmul-softmax attention,
bf16 autocast where enabled) once per ``--workers`` count (0: games made in a background thread;
N: N DataLoader worker processes) and prints, for each, tokens/s, time per step and the share of
step time spent waiting for games. The references train a ``HookedTransformer`` in float32 and
under the same bf16 autocast; the ratio against the faster one is the speed goal (>= 1.5x).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core.models.convert import build_hooked_transformer, tl_config_for  # noqa: E402
from core.train.distributed import resolve_device  # noqa: E402
from core.train.next_move import TrainConfig, Trainer, loss_fn, make_batch, make_optimizer  # noqa: E402


def time_ours(cfg: TrainConfig, warmup: int, steps: int) -> tuple[float, float, float]:
    """Tokens/s, seconds per step and generation share of ``Trainer.train`` over ``steps`` steps after a warm-up."""
    with tempfile.TemporaryDirectory() as run:
        trainer = Trainer(cfg, run)
        trainer.train(until_step=warmup)
        infos = []
        t0 = time.perf_counter()
        trainer.train(until_step=warmup + steps, progress=lambda step, total, info: infos.append(info))
        _sync(trainer.device)
        elapsed = time.perf_counter() - t0
    tokens = sum(int(make_batch(cfg, s)[2].sum()) for s in range(warmup, warmup + steps))
    return tokens / elapsed, elapsed / steps, infos[-1]["gen_share"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_hooked(cfg: TrainConfig, warmup: int, steps: int, bf16: bool, device: torch.device) -> float:
    """Tokens/s of the same training loop on a ``HookedTransformer`` of the same architecture."""
    torch.manual_seed(cfg.seed)
    model = build_hooked_transformer(tl_config_for(cfg.gpt_config()), device=str(device))
    model.train()
    optimizer = make_optimizer(model, cfg)
    tokens_done, t0 = 0, 0.0
    for step in range(warmup + steps):
        if step == warmup:
            _sync(device)
            tokens_done, t0 = 0, time.perf_counter()
        tokens, target, valid = (t.to(device) for t in make_batch(cfg, step))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(tokens)
        loss = loss_fn(logits, target, valid)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        tokens_done += int(valid.sum())
    _sync(device)
    return tokens_done / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--game", default="othello", choices=["othello", "chess"])
    parser.add_argument("--n-ctx", type=int, default=0, help="chess: context length (0: the game's default)")
    parser.add_argument("--size", type=int, default=8)
    parser.add_argument("--n-layers", type=int, default=6)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--n-heads", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--compile", type=int, default=1, help="1: our trainer uses torch.compile (its warm-up covers compiling)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="game worker processes to time (0: a background thread)")
    parser.add_argument("--references", type=int, default=1, help="0: skip the HookedTransformer runs")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = TrainConfig(
        game=args.game,
        n_ctx=args.n_ctx,
        size=args.size,
        n_layers=args.n_layers,
        d_model=args.d_model,
        n_heads=args.n_heads,
        d_mlp=4 * args.d_model,
        batch_size=args.batch_size,
        eval_every=10**9,
        eval_games=10,
        checkpoint_every_s=10**9,
        compile=bool(args.compile),
        device=args.device,
    )
    device = resolve_device(args.device)
    name = f"{cfg.size}x{cfg.size} Othello" if cfg.game == "othello" else f"chess (context {cfg.game_plugin().n_ctx})"
    print(f"{name}, {cfg.n_layers} layers x {cfg.d_model}, batch {cfg.batch_size}, {args.steps} timed steps, {device}, torch threads {torch.get_num_threads()}")
    ours = 0.0
    for workers in args.workers:
        rate, per_step, gen_share = time_ours(dataclasses.replace(cfg, workers=workers), args.warmup, args.steps)
        ours = max(ours, rate)
        source = "a background thread" if workers == 0 else f"{workers} worker process{'es' if workers > 1 else ''}"
        print(f"  BoardLens trainer, games from {source:<22}: {rate:9.0f} tokens/s  {per_step * 1000:7.1f} ms/step  waiting for games {gen_share:6.1%} of step time")
    if not args.references:
        return
    ht32 = time_hooked(cfg, args.warmup, args.steps, bf16=False, device=device)
    print(f"  HookedTransformer float32:              {ht32:9.0f} tokens/s")
    ht16 = time_hooked(cfg, args.warmup, args.steps, bf16=True, device=device)
    print(f"  HookedTransformer bf16 autocast:        {ht16:9.0f} tokens/s")
    best = max(ht32, ht16)
    print(f"speed-up of our best vs the faster HookedTransformer run: {ours / best:.2f}x (goal >= 1.5x); vs float32: {ours / ht32:.2f}x")


if __name__ == "__main__":
    main()
