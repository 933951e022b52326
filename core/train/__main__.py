"""Command line: ``python -m core.train {next-move,export,evaluate} ...``.

Examples::

    python -m core.train next-move runs/othello8 --size 8 --n-layers 6 --d-model 256 --steps 40000
    python -m core.train next-move runs/othello8x512 --config recipes/othello_8x512.json
    torchrun --nproc-per-node 8 -m core.train next-move runs/othello8x512 --config recipes/othello_8x512.json
    python -m core.train export runs/othello8 assets/models/othello8 --name othello8
    python -m core.train evaluate othello8 --games 2000
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import fields
from pathlib import Path

import torch
from tqdm import tqdm

from core.models.errors import ModelLoadError
from core.train.distributed import SettingError, ranks_from_env, resolve_device
from core.train.next_move import OVERRIDABLE, CheckpointError, TrainConfig, Trainer


def _add_text_train_args(p: argparse.ArgumentParser) -> None:
    from core.train.next_token import TextTrainConfig

    _add_train_args(p, TextTrainConfig)


def _add_train_args(p: argparse.ArgumentParser, config=TrainConfig) -> None:
    """One flag per config field; unset flags stay ``None`` so a resume can tell them apart."""
    for f in fields(config):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            p.add_argument(flag, type=lambda s: s.lower() in ("1", "true", "yes"), default=None, help=f"default {f.default}")
        else:
            caster = {"int": int, "float": float, "str": str}[f.type if isinstance(f.type, str) else f.type.__name__]
            p.add_argument(flag, type=caster, default=None, help=f"default {f.default}")


def read_recipe(path: str) -> dict:
    """A recipe file: a JSON object of ``TrainConfig`` fields (flags given on the command line win)."""
    try:
        recipe = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"error: --config {path}: {exc}") from None
    if not isinstance(recipe, dict):
        raise SystemExit(f"error: --config {path}: expected a JSON object of training settings")
    names = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(recipe) - names - {"about"})
    if unknown:
        raise SystemExit(f"error: --config {path}: unknown settings {', '.join(unknown)}")
    return {k: v for k, v in recipe.items() if k in names}


def cmd_next_move(args: argparse.Namespace) -> None:
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name) is not None}
    given = {**(read_recipe(args.config) if args.config else {}), **given}
    main = ranks_from_env().is_main
    if (Path(args.run_dir) / Trainer.CHECKPOINT).exists() and main:
        ignored = sorted(set(given) - set(OVERRIDABLE))
        if ignored:
            print(f"resuming {args.run_dir}: its saved config wins; ignoring {', '.join('--' + n.replace('_', '-') for n in ignored)}", flush=True)
    trainer = Trainer(TrainConfig(**given), args.run_dir, overrides=given)
    cfg = trainer.cfg
    if not main:  # other ranks train silently; rank 0 reports for all
        trainer.train(until_step=args.until_step)
        trainer.close()
        return
    ranks = trainer.ranks.world
    where = f"{trainer.device}" + (f" x {ranks} ranks ({trainer.batch_stop - trainer.batch_start} games each)" if ranks > 1 else "")
    print(f"run {args.run_dir}: {trainer.model.n_params():,} parameters on {where}, game workers {cfg.workers}, step {trainer.state.step}/{cfg.steps}", flush=True)
    bar = tqdm(total=cfg.steps, initial=trainer.state.step, unit="step", dynamic_ncols=True, mininterval=5)

    def progress(step: int, total: int, info: dict) -> None:
        bar.update(1)
        post = {"loss": f"{info['loss']:.3f}", "tok/s": f"{info['tokens_per_s']:.0f}", "gen": f"{info['gen_share']:.0%}"}
        if "top1_legal" in info:
            post["legal"] = f"{info['top1_legal']:.4f}"
            post["ill_mass"] = f"{info['illegal_mass']:.4f}"
            bar.write(f"step {step}: loss {info['loss']:.4f} top1_legal {info['top1_legal']:.4%} illegal_mass {info['illegal_mass']:.4%}")
        bar.set_postfix(post, refresh=False)

    trainer.train(until_step=args.until_step, progress=progress)
    bar.close()
    trainer.close()


def cmd_export(args: argparse.Namespace) -> None:
    from core.train.export import export_run

    if not (Path(args.run_dir) / Trainer.CHECKPOINT).exists():
        sys.exit(f"{args.run_dir}: no {Trainer.CHECKPOINT}; train a run there first (python -m core.train next-move {args.run_dir} ...)")
    trainer = Trainer(TrainConfig(), args.run_dir, overrides={"device": "cpu"})
    # The run folder is only where checkpoints live: the card names it after the model.
    # A warm-started stage gets its own run folder: the first stage's folder would resume instead.
    run = f"runs/{args.name}" + (f"-stage{len(trainer.state.earlier) + 1}" if trainer.state.earlier else "")
    command = "python -m core.train next-move " + shlex.join([run] + _config_flags(trainer.cfg))
    card = export_run(trainer, args.out_dir, args.name, command, eval_games=args.games)
    print(json.dumps({k: card[k] for k in ("parameters", "steps", "games_seen", "wall_time_s", "eval")}, indent=2))


def cmd_evaluate(args: argparse.Namespace) -> None:
    from core.interp.shared.legality import evaluate_legality
    from core.models.registry import load_model
    from core.train.next_move import held_out_games

    handle = load_model(args.model)
    games = held_out_games(args.games, handle.game)
    result = evaluate_legality(handle.forward, games, handle.game)
    print(json.dumps({"model": args.model, **result}, indent=2))


def cmd_probes(args: argparse.Namespace) -> None:
    from core.interp.probes import linear_probes as P
    from core.interp.shared import activations
    from core.interp.shared import board_targets
    from core.models.registry import load_model, randomly_initialised

    handle = load_model(args.model)
    out = Path(args.out or P.PROBE_ROOT / handle.name)
    hooks = activations.resid_hooks(handle.cfg.n_layers, tuple(args.hooks))
    bar = tqdm(total=1.0, unit="", bar_format="{l_bar}{bar}| {desc}")

    def progress(text: str, fraction: float) -> None:
        bar.set_description_str(text, refresh=False)
        bar.n = fraction
        bar.refresh()

    data = P.probe_data(handle, hooks, args.train_games, args.test_games, progress)
    random_handle = randomly_initialised(handle) if args.baseline else None
    random_data = P.probe_data(random_handle, hooks, args.train_games, args.test_games) if random_handle else None
    for target in args.targets or list(board_targets.targets_for(handle.game)):
        probes = P.train_probes(handle, target, hooks, args.train_games, args.test_games, progress, data=data)
        baseline = P.train_probes(random_handle, target, hooks, args.train_games, args.test_games, data=random_data) if random_data else None
        P.save_probe_set(probes, out)
        entry = P.summary_entry(probes, baseline)
        P.write_summary(out, target, entry)
        bar.write(f"{target}: " + "  ".join(f"L{h.split('.')[1]} {a:.4f}" for h, a in zip(entry["hooks"], entry["accuracy"])) + (f"  (random-init best {max(entry['random_accuracy']):.4f})" if baseline else ""))
    bar.close()
    print(f"wrote {out}")


def _text_sae(args, handle, base: dict, progress, bar) -> None:
    """A text model's SAE: trained on random windows of its training corpus (the standard
    library's training files, or ``--corpus``), measured on windows of its held-out shard."""
    from core.interp.sae.store import save_sae
    from core.interp.sae.token_sae import window_sae_metrics
    from core.text.shard import shard_windows
    from core.text.corpus import cached_tokens, read_documents, stdlib_documents
    from core.text.shard import bundled_shard
    from core.train.sae import SAETrainConfig, card_for, train_sae

    docs = read_documents(args.corpus) if args.corpus else stdlib_documents("train")
    tokens = cached_tokens(handle.tokenizer, docs, progress)
    held = bundled_shard(handle)
    if held is None:  # a hub or package model: the standard library's held-out files, in its tokenizer
        held = cached_tokens(handle.tokenizer, stdlib_documents("held-out"), progress)
    cfg = SAETrainConfig(k=args.k, total_tokens=args.tokens, games_per_refill=64, **base)
    sae, stats = train_sae(handle, cfg, progress, tokens=tokens)
    bar.close()
    windows = torch.from_numpy(shard_windows(held, handle.cfg.n_ctx, args.eval_games))
    metrics = window_sae_metrics(handle, sae, cfg.hook, windows)
    card = card_for(handle, cfg, stats, metrics)
    card["command"] = "python -m core.train " + shlex.join(sys.argv[1:])
    card["corpus"] = {"train": args.corpus or "stdlib (training files)", "train_tokens": int(len(tokens)), "metrics": f"{len(windows)} windows of {handle.cfg.n_ctx} held-out tokens"}
    save_sae(sae, args.out_dir, card)
    print(json.dumps({"training": stats, "metrics": metrics}, indent=2))


def cmd_sae(args: argparse.Namespace) -> None:
    from core.interp.sae.metrics import board_scores, sae_metrics
    from core.interp.sae.store import save_sae
    from core.models.registry import load_model, randomly_initialised
    from core.train.sae import SAETrainConfig, card_for, train_sae

    if ranks_from_env().world > 1:
        sys.exit(
            "error: the SAE trainer runs on one process: SAELens's SAETrainer has no distributed mode "
            "(no process group, no gradient all-reduce). Run it without torchrun, on one GPU with --device cuda."
        )
    if args.threads:
        torch.set_num_threads(args.threads)
    device = str(resolve_device(args.device))
    handle = load_model(args.model, device=device)
    args.hook = args.hook or ("blocks.0.mlp.hook_post" if handle.kind == "text" else "blocks.3.hook_resid_post")
    base = dict(
        hook=args.hook, architecture=args.architecture, d_sae=args.d_sae, l1_coefficient=args.l1, lr=args.lr, batch_size=args.batch_size,
        dead_feature_window=args.dead_window, seed=args.seed, device=device,
    )
    bar = tqdm(total=1.0, bar_format="{l_bar}{bar}| {desc}")

    def progress(text: str, fraction: float) -> None:
        bar.set_description_str(text, refresh=False)
        bar.n = fraction
        bar.refresh()

    if handle.kind == "text":
        _text_sae(args, handle, base, progress, bar)
        return
    cfg = SAETrainConfig(k=args.k, total_tokens=args.tokens, **base)
    curve = _curve_points(handle, cfg, sorted(set(args.curve_k) | {args.k}), args.curve_tokens, args.eval_games, progress, bar.write) if args.curve_k else []
    sae, stats = train_sae(handle, cfg, progress)
    bar.close()
    metrics = sae_metrics(handle, sae, cfg.hook, n_games=args.eval_games)
    metrics["board"] = board_scores(handle, sae, cfg.hook, random_handle=randomly_initialised(handle))
    card = card_for(handle, cfg, stats, metrics)
    card["command"] = "python -m core.train " + shlex.join(sys.argv[1:])
    if curve:
        card["curve"] = curve + [_curve_point(f"this SAE (k={args.k})", args.k, args.tokens, metrics, this=True)]
    save_sae(sae, args.out_dir, card)
    print(json.dumps({"training": stats, "metrics": metrics, "curve": curve}, indent=2))


def cmd_transcoder(args: argparse.Namespace) -> None:
    from core.train.transcoder import command

    command(args, "python -m core.train " + shlex.join(sys.argv[1:]))


def _curve_point(name: str, k: int, tokens: int, metrics: dict, this: bool = False) -> dict:
    return {"name": name, "k": k, "tokens": tokens, **({"this": True} if this else {}), **{key: metrics[key] for key in ("l0", "fvu", "ce_recovered_zero", "ce_recovered_mean")}}


def _curve_points(handle, cfg, ks: list[int], tokens: int, eval_games: int, progress, write) -> list[dict]:
    """The sparsity trade-off at one token budget: the same SAE trained with each k on ``tokens``
    activations (the SAE's own k included, so every point of the curve had the same data)."""
    from dataclasses import replace

    from core.interp.sae.metrics import sae_metrics
    from core.train.sae import train_sae

    points = []
    for k in ks:
        point_sae, _ = train_sae(handle, replace(cfg, k=k, total_tokens=tokens), progress)
        m = sae_metrics(handle, point_sae, cfg.hook, n_games=eval_games)
        points.append(_curve_point(f"k={k}", k, tokens, m))
        write(f"k={k} on {tokens:,} activations: L0 {m['l0']:.1f} FVU {m['fvu']:.3f} CE recovered {m['ce_recovered_zero']:.3f}")
    return sorted(points, key=lambda p: p["l0"])


def cmd_sae_curve(args: argparse.Namespace) -> None:
    """Rebuild a bundled SAE card's FVU-vs-L0 curve at one token budget: every k (the card's own
    included) retrained on ``--tokens`` activations, beside the SAE itself (its own budget)."""
    from core.interp.sae.store import read_card
    from core.models.registry import load_model
    from core.train.sae import SAETrainConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    folder = Path(args.folder)
    card = read_card(folder)
    cfg = SAETrainConfig(**card["train_config"])
    handle = load_model(args.model, device=cfg.device if cfg.device != "auto" else "cpu")
    old = [p for p in card.get("curve", []) if not p.get("this") and p.get("tokens") != cfg.total_tokens]
    tokens = args.tokens or (old[0]["tokens"] if old else cfg.total_tokens // 4)
    ks = sorted(set(args.k or [p["k"] for p in card.get("curve", [])] or [8, 16, 64]) | {cfg.k})
    bar = tqdm(total=1.0, bar_format="{l_bar}{bar}| {desc}")

    def progress(text: str, fraction: float) -> None:
        bar.set_description_str(text, refresh=False)
        bar.n = fraction
        bar.refresh()

    points = _curve_points(handle, cfg, ks, tokens, int(card["metrics"].get("games", 200)), progress, bar.write)
    bar.close()
    card["curve"] = points + [_curve_point(f"this SAE (k={cfg.k})", cfg.k, cfg.total_tokens, card["metrics"], this=True)]
    card["curve_command"] = "python -m core.train " + shlex.join(["sae-curve", args.model, args.folder, "--tokens", str(tokens), "--k", *map(str, ks)])
    (folder / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    print(json.dumps(card["curve"], indent=2))


# Settings that change how a run is watched or how fast it goes, never the weights it ends with.
NOT_IN_COMMAND = ("eval_every", "eval_games", "checkpoint_every_s", "threads", "compile", "device", "workers")


def _config_flags(cfg: TrainConfig) -> list[str]:
    """The flags that reproduce ``cfg``'s weights from scratch (``--steps`` included: an extended
    run keeps its schedule through ``--decay-steps``)."""
    out = []
    for f in fields(TrainConfig):
        if f.name in NOT_IN_COMMAND or (f.name == "init_from" and not cfg.init_from):
            continue
        out += ["--" + f.name.replace("_", "-"), str(getattr(cfg, f.name))]
    return out


def _text_flags(cfg) -> list[str]:
    from core.train.next_token import OVERRIDABLE as TEXT_OVERRIDABLE

    return [x for f in fields(cfg) if f.name not in TEXT_OVERRIDABLE or f.name == "steps" for x in ("--" + f.name.replace("_", "-"), str(getattr(cfg, f.name)))]


def cmd_next_token(args: argparse.Namespace) -> None:
    from core.train.next_token import TextTrainConfig, TextTrainer

    given = {f.name: getattr(args, f.name) for f in fields(TextTrainConfig) if getattr(args, f.name, None) is not None}
    bar = tqdm(total=1.0, unit="", bar_format="{l_bar}{bar}| {desc}")

    def prepare(text: str, fraction: float) -> None:
        bar.set_description_str(text, refresh=False)
        bar.n = fraction
        bar.refresh()

    trainer = TextTrainer(TextTrainConfig(**given), args.run_dir, overrides=given, progress=prepare)
    bar.close()
    cfg = trainer.cfg
    print(f"run {args.run_dir}: {trainer.model.n_params():,} parameters on {trainer.device}, {len(trainer.train_tokens):,} training tokens, step {trainer.state.step}/{cfg.steps}", flush=True)
    bar = tqdm(total=cfg.steps, initial=trainer.state.step, unit="step", dynamic_ncols=True, mininterval=5)

    def progress(step: int, total: int, info: dict) -> None:
        bar.update(1)
        bar.set_postfix({"loss": f"{info['loss']:.3f}", "tok/s": f"{info['tokens_per_s']:.0f}"}, refresh=False)
        if "held_out_ce" in info:
            bar.write(f"step {step}: loss {info['loss']:.4f} held-out CE {info['held_out_ce']:.4f}")

    trainer.train(until_step=args.until_step, progress=progress)
    bar.close()


def cmd_export_text(args: argparse.Namespace) -> None:
    from core.train.next_token import TextTrainConfig, TextTrainer, export_text_run

    if not (Path(args.run_dir) / TextTrainer.CHECKPOINT).exists():
        sys.exit(f"{args.run_dir}: no {TextTrainer.CHECKPOINT}; train a run there first (python -m core.train next-token {args.run_dir} ...)")
    trainer = TextTrainer(TextTrainConfig(), args.run_dir, overrides={"device": "cpu"})
    command = "python -m core.train next-token " + shlex.join([f"runs/{args.name}"] + _text_flags(trainer.cfg))
    card = export_text_run(trainer, args.out_dir, args.name, command)
    print(json.dumps({k: card[k] for k in ("parameters", "steps", "tokens_seen", "wall_time_s", "eval")}, indent=2))


def cmd_sae_rescore(args: argparse.Namespace) -> None:
    """Recompute a bundled SAE card's board-game metrics (coverage, board reconstruction on the
    paper's definition, beside MLP neurons and a random-init model) with the current code."""
    from core.interp.sae.metrics import board_scores
    from core.interp.sae.store import load_sae, read_card
    from core.models.registry import load_model, randomly_initialised

    folder = Path(args.folder)
    card = read_card(folder)
    handle = load_model(args.model)
    sae = load_sae(folder, d_in=handle.hook_width(card["hook"]))
    card.setdefault("metrics", {})["board"] = board_scores(handle, sae, card["hook"], random_handle=randomly_initialised(handle))
    card["board_rescored"] = "python -m core.train " + shlex.join(["sae-rescore", args.model, args.folder])
    (folder / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    print(json.dumps(card["metrics"]["board"], indent=2))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m core.train")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("next-move", help="train (or resume) a next-move model in a run folder")
    p.add_argument("run_dir")
    p.add_argument("--until-step", type=int, default=None, help="stop early at this step (resume later)")
    p.add_argument("--config", default=None, help="a recipe: JSON of these settings (e.g. recipes/othello_8x512.json); flags win")
    _add_train_args(p)
    p.set_defaults(func=cmd_next_move)
    p = sub.add_parser("next-token", help="train (or resume) a next-token text model in a run folder")
    p.add_argument("run_dir")
    p.add_argument("--until-step", type=int, default=None, help="stop early at this step (resume later)")
    _add_text_train_args(p)
    p.set_defaults(func=cmd_next_token)
    p = sub.add_parser("export-text", help="export a next-token run to the bundled format")
    p.add_argument("run_dir")
    p.add_argument("out_dir")
    p.add_argument("--name", required=True)
    p.set_defaults(func=cmd_export_text)
    p = sub.add_parser("export", help="export a run to the bundled format")
    p.add_argument("run_dir")
    p.add_argument("out_dir")
    p.add_argument("--name", required=True)
    p.add_argument("--games", type=int, default=2000, help="held-out games for the card's metrics")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("evaluate", help="top-1 legal rate and illegal mass of a model on held-out games")
    p.add_argument("model", help="a registry name (e.g. othello8) or a bundle folder")
    p.add_argument("--games", type=int, default=2000)
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser("probes", help="train linear probes on a model and save them (default: assets/probes/<model>)")
    p.add_argument("model", help="a registry name or a bundle folder")
    p.add_argument("--targets", nargs="+", default=None, help="default: every target the model's game offers")
    p.add_argument("--hooks", nargs="+", default=["resid_post"], choices=["resid_pre", "resid_mid", "resid_post"])
    p.add_argument("--train-games", type=int, default=2000)
    p.add_argument("--test-games", type=int, default=500)
    p.add_argument("--baseline", type=lambda s: s.lower() in ("1", "true", "yes"), default=True, help="also fit on a randomly initialised copy")
    p.add_argument("--out", default=None)
    p.set_defaults(func=cmd_probes)
    p = sub.add_parser("sae-rescore", help="recompute a bundled SAE card's board-game metrics with the current code")
    p.add_argument("model")
    p.add_argument("folder")
    p.set_defaults(func=cmd_sae_rescore)
    p = sub.add_parser("sae-curve", help="rebuild a bundled SAE card's FVU-vs-L0 curve at one token budget (every k retrained on the same activations)")
    p.add_argument("model")
    p.add_argument("folder")
    p.add_argument("--tokens", type=int, default=0, help="activations per point (default: the card's earlier curve budget)")
    p.add_argument("--k", type=int, nargs="*", default=None, help="the k of the curve (default: the card's; its own k is always added)")
    p.add_argument("--threads", type=int, default=0)
    p.set_defaults(func=cmd_sae_curve)
    p = sub.add_parser("sae", help="train a sparse autoencoder on one hook of a model (SAELens format)")
    p.add_argument("model")
    p.add_argument("out_dir")
    p.add_argument("--hook", default=None, help="default: blocks.3.hook_resid_post (board-game models), blocks.0.mlp.hook_post (text models, as Nanda's gelu-1l SAEs)")
    p.add_argument("--architecture", default="topk", choices=["topk", "standard"])
    p.add_argument("--d-sae", type=int, default=2048)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--l1", type=float, default=5.0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--tokens", type=int, default=2_000_000)
    p.add_argument("--eval-games", type=int, default=200, help="held-out games (text models: windows) for the card's metrics")
    p.add_argument("--corpus", default=None, help="text models: a text / JSONL / parquet file or folder to train on (default: the standard library's training files)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--dead-window", type=int, default=200, help="TopK: steps without firing before the auxiliary loss revives a feature")
    p.add_argument("--curve-k", type=int, nargs="*", default=[], help="also train these k (TopK) for the FVU-vs-L0 curve in the card")
    p.add_argument("--curve-tokens", type=int, default=500_000, help="activations for each curve point")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.set_defaults(func=cmd_sae)
    p = sub.add_parser("transcoder", help="train (or resume) per-layer skip transcoders, MLP input -> output (SAELens format)")
    p.add_argument("model")
    p.add_argument("out_dir")
    p.add_argument("--layer", default="all", help="a layer number, or all")
    p.add_argument("--card-only", action="store_true", help="measure the finished set in OUT again (replacement scores; board games: feature labels) without training")
    p.add_argument("--kind", default="batchtopk", help="batchtopk (saved as JumpReLU) or l1 (ReLU with an L1 penalty)")
    for flag, kind, default in (("--k", int, 24), ("--finetune-tokens", int, 1_000_000), ("--finetune-fvu-weight", float, 0.5), ("--d-transcoder", int, 2048), ("--l1", float, 0.08), ("--lr", float, 1e-3), ("--tokens", int, 2_000_000), ("--batch-size", int, 1024), ("--seed", int, 0), ("--eval-games", int, 200), ("--threads", int, 0)):
        p.add_argument(flag, type=kind, default=default)
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.set_defaults(func=cmd_transcoder)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (CheckpointError, ModelLoadError, SettingError) as exc:  # a damaged file or a bad setting: say which, no traceback
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main(sys.argv[1:])
