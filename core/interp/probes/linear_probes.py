"""Linear probes on the residual stream: targets from the engine, activations, fitting, scoring.

A probe for target ``t`` at hook ``h`` is ``weight (d_model, size, size, n_classes)`` and ``bias
(size, size, n_classes)``; applied to ``h``'s activation at a position it gives per-square class
logits. Position ``t`` of a game holds move ``t`` and the board *after* it, so the model has seen
exactly the moves that made that board.

Fitting is multinomial logistic regression, all squares at once, full batch, in a *whitened* basis
(activations centred and decorrelated with the Cholesky factor of their covariance): the
closed-form ridge solution there is already close, and a few well-conditioned L-BFGS steps finish
it — seconds per layer instead of minutes of SGD.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from core.checksums import mismatch, sha256_of
from core.games.base import Game
from core.models.handle import ModelHandle
from core.interp.shared.board_targets import TARGETS, targets_for
from core.interp.shared.activations import ProbeData, ProgressFn, collect, resid_hooks

PROBE_TRAIN_SEED = 1_000_003  # games for fitting probes (not the model's training or eval seeds)
PROBE_TEST_SEED = 1_000_033  # held-out games for scoring probes



# -- targets -----------------------------------------------------------------------------------


# -- activations -------------------------------------------------------------------------------


# -- fitting -----------------------------------------------------------------------------------


@torch.no_grad()
def logistic_loss_and_grad(z: torch.Tensor, y: torch.Tensor, w: torch.Tensor, b: torch.Tensor, l2: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The probe's loss (mean cross-entropy over rows and squares, plus ``l2 * |w|^2``) and its
    gradients in ``w (d, squares, classes)`` and ``b (squares, classes)``.

    In closed form (softmax minus one-hot), not by autograd: the same numbers with half the passes
    over the ``(rows, squares, classes)`` logits, which are most of a probe's training time.
    """
    n, n_sq, n_classes = len(z), *b.shape
    logits = (z @ w.reshape(len(w), -1)).reshape(n, n_sq, n_classes) + b
    lse = torch.logsumexp(logits, -1, keepdim=True)
    scale = 1.0 / (n * n_sq)
    loss = (lse.sum() - logits.gather(-1, y[..., None]).sum()) * scale + l2 * (w * w).sum()
    grad = (logits - lse).exp_()  # softmax
    grad.scatter_add_(-1, y[..., None], torch.full(y[..., None].shape, -1.0))
    grad *= scale
    return loss, (z.T @ grad.reshape(n, -1)).reshape(w.shape) + 2 * l2 * w, grad.sum(0)


def fit_probe(
    x: torch.Tensor, y: torch.Tensor, n_classes: int, l2: float = 1e-4, max_iter: int = 15, max_rows: int = 25_000, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression of every square at once.

    ``x (N, d_model)``, ``y int64 (N, n_squares)`` -> ``weight (d_model, n_squares, n_classes)``,
    ``bias (n_squares, n_classes)`` in the original activation basis.

    Two stages, both in the whitened basis: the closed-form ridge solution on all rows (it already
    gets within a fraction of a percent of the logistic accuracy), then ``max_iter`` L-BFGS steps of
    the logistic loss on at most ``max_rows`` rows, which calibrates the probabilities the page shows.
    ``max_iter=0`` returns the ridge solution with a softmax-scaled output.
    """
    n, d = x.shape
    n_sq = y.shape[1]
    mean = x.mean(0)
    xc = x - mean
    cov = xc.T @ xc / n
    cov += (1e-4 * cov.diagonal().mean() + 1e-8) * torch.eye(d)
    chol = torch.linalg.cholesky(cov)  # cov = L L^T; whitened z = xc L^-T has identity covariance
    z = torch.linalg.solve_triangular(chol, xc.T, upper=False).T
    onehot = torch.nn.functional.one_hot(y, n_classes).float().reshape(n, n_sq * n_classes)
    prior = onehot.mean(0)
    # Ridge regression of one-hot targets: z is white, so the solution is z^T (Y - mean Y) / N.
    # Scaled by 4 it is a good logistic starting point (slope of softmax around uniform).
    w = (z.T @ (onehot - prior)) / n * 4.0
    w = w.reshape(d, n_sq, n_classes)
    log_prior = prior.reshape(n_sq, n_classes).clamp(min=1e-4).log()
    b = log_prior - log_prior.mean(-1, keepdim=True)
    if max_iter > 0:
        rows = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_rows]
        zs, ys = z[rows], y[rows]
        opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, history_size=10, line_search_fn="strong_wolfe")

        def closure():
            loss, w.grad, b.grad = logistic_loss_and_grad(zs, ys, w, b, l2)
            return loss

        opt.step(closure)
    with torch.no_grad():
        w_orig = torch.linalg.solve_triangular(chol.T, w.detach().reshape(d, -1), upper=True).reshape(d, n_sq, n_classes)
        b_orig = b.detach() - torch.einsum("d,dsc->sc", mean, w_orig)
    return w_orig, b_orig


@dataclass
class Probe:
    """One fitted probe and its held-out scores."""

    weight: torch.Tensor  # (d_model, size, size, n_classes)
    bias: torch.Tensor  # (size, size, n_classes)
    meta: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.weight.shape[1]

    def logits(self, acts: torch.Tensor) -> torch.Tensor:
        """``(..., d_model)`` -> ``(..., size, size, n_classes)``."""
        return torch.einsum("...d,drcn->...rcn", acts.float(), self.weight) + self.bias

    def probs(self, acts: torch.Tensor) -> torch.Tensor:
        return self.logits(acts).softmax(-1)


def score(pred: np.ndarray, truth: np.ndarray, move_index: np.ndarray, classes: tuple[str, ...], size: int) -> dict:
    """Accuracy per square, per class (recall, keyed by class name), whole-board exact match and by move index."""
    correct = pred == truth
    by_move = [float(correct[move_index == t].mean()) if (move_index == t).any() else None for t in range(int(move_index.max()) + 1)]
    per_class = {}
    for c, name in enumerate(classes):
        sel = truth == c
        per_class[name] = float(correct[sel].mean()) if sel.any() else None
    empty = classes.index("empty") if "empty" in classes else None
    occupied = truth != empty if empty is not None else None
    return {
        "accuracy": float(correct.mean()),
        # Empty squares make plain accuracy look good: the occupied squares alone, where it applies.
        **({"occupied_accuracy": float(correct[occupied].mean()) if occupied.any() else None} if occupied is not None else {}),
        "board_exact": float(correct.all(-1).mean()),
        "per_class": per_class,
        "per_square": correct.mean(0).reshape(size, size).round(4).tolist(),
        "by_move": by_move,
        "positions": int(len(truth)),
    }


def train_probes(
    handle: ModelHandle,
    target: str = "mine_theirs_empty",
    hooks: list[str] | None = None,
    train_games: int = 2000,
    test_games: int = 500,
    progress: ProgressFn | None = None,
    data: tuple[ProbeData, ProbeData] | None = None,
    games: tuple[np.ndarray, np.ndarray] | None = None,
    corpus: str = "random legal games",
) -> dict[str, Probe]:
    """Fit one probe per hook on fresh games and score it on held-out games -> ``{hook: Probe}``.

    ``data`` (train, test) lets several targets share one activation pass; ``games`` (train, test)
    are a corpus's games (named ``corpus`` in each probe's record) read instead of random ones.
    """
    size = handle.game.rows
    targets = targets_for(handle.game)
    if target not in targets:
        raise ValueError(f"unknown probe target {target!r}; choose from {', '.join(targets)}")
    n_classes = len(targets[target])
    hooks = hooks or resid_hooks(handle.cfg.n_layers)
    t0 = time.perf_counter()
    if data is None:  # reading activations: the first half of the bar, fitting the second
        data = probe_data(handle, hooks, train_games, test_games, stage(progress, 0.0, 0.5), games)
    train, test = data
    train_games, test_games = len(train.valid), len(test.valid)
    y_train = torch.from_numpy(train.targets(target))
    y_test = test.targets(target)
    probes = {}
    for i, hook in enumerate(hooks):
        if progress:
            progress(f"fitting the {target} probe at layer {hook.split('.')[1]} ({i + 1} of {len(hooks)})", 0.5 + 0.5 * i / len(hooks))
        w, b = fit_probe(train.acts[hook], y_train, n_classes)
        probe = Probe(w.reshape(-1, size, size, n_classes), b.reshape(size, size, n_classes))
        pred = probe.logits(test.acts[hook]).argmax(-1).reshape(len(y_test), -1).numpy()
        probe.meta = {
            "model": handle.name,
            "hook": hook,
            "layer": int(hook.split(".")[1]),
            "target": target,
            "classes": list(targets[target]),
            "train_games": train_games,
            "test_games": test_games,
            "train_positions": int(len(y_train)),
            "corpus": corpus,
            "held_out": score(pred, y_test, test.move_index, targets[target], size),
            "fit_seconds": round(time.perf_counter() - t0, 2),
        }
        probes[hook] = probe
    if progress:
        progress(f"{target} probes done", 1.0)
    return probes


def score_probes(handle: ModelHandle, probes: dict[str, Probe], games: np.ndarray, progress: ProgressFn | None = None) -> dict[str, dict]:
    """Held-out scores (as in a probe's record) of fitted probes on other games, e.g. a
    researcher's own: ``{hook: score}``, one activation pass for every hook."""
    if not probes:
        return {}
    first = next(iter(probes.values()))
    target = first.meta.get("target", "mine_theirs_empty")
    classes = tuple(targets_for(handle.game)[target])
    data = collect(handle, games, list(probes), progress=progress)
    truth = data.targets(target)
    out = {}
    for hook, probe in probes.items():
        pred = probe.logits(data.acts[hook]).argmax(-1).reshape(len(truth), -1).numpy()
        out[hook] = score(pred, truth, data.move_index, classes, handle.game.rows) | {"games": int(len(data.valid))}
    return out


def probe_data(handle: ModelHandle, hooks: list[str], train_games: int, test_games: int, progress: ProgressFn | None = None, games: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[ProbeData, ProbeData]:
    """Activations of ``train_games`` and ``test_games`` fresh random games, or of ``games``
    (a corpus's training and held-out games)."""
    game = handle.game
    if games is None:
        games = game.random_games(train_games, seed=PROBE_TRAIN_SEED), game.random_games(test_games, seed=PROBE_TEST_SEED)
    share = len(games[0]) / max(len(games[0]) + len(games[1]), 1)  # the bar moves with the games read
    train = collect(handle, games[0], hooks, progress=stage(progress, 0.0, share, "training games: "))
    test = collect(handle, games[1], hooks, progress=stage(progress, share, 1.0, "held-out games: "))
    return train, test


def stage(progress: ProgressFn | None, start: float, end: float, prefix: str = "") -> ProgressFn | None:
    """``progress`` for one stage of a longer job: its 0..1 drawn from ``start`` to ``end`` of the
    job's bar (one bar that never runs back), its text after ``prefix``."""
    if progress is None:
        return None
    return lambda text, f: progress(prefix + text, start + (end - start) * min(max(float(f), 0.0), 1.0))


# -- files ---------------------------------------------------------------------------------------


def _stem(path: str | Path) -> str:
    """Probe paths are named by hook (``blocks.3.hook_resid_post``): never treat its dots as a suffix."""
    return str(path).removesuffix(".safetensors").removesuffix(".json")


def save_probe(probe: Probe, path: str | Path) -> Path:
    """``<path>.safetensors`` (``weight``, ``bias``) + ``<path>.json`` (metadata)."""
    from safetensors.torch import save_file

    stem = _stem(path)
    Path(stem).parent.mkdir(parents=True, exist_ok=True)
    save_file({"weight": probe.weight.contiguous(), "bias": probe.bias.contiguous()}, stem + ".safetensors")
    meta = {**probe.meta, "sha256": sha256_of(stem + ".safetensors")}
    Path(stem + ".json").write_text(json.dumps(meta, indent=1) + "\n")
    return Path(stem + ".safetensors")


class ProbeLoadError(ValueError):
    pass


def load_probe(path: str | Path, d_model: int | None = None, size: int | None = None) -> Probe:
    """Read a saved probe, checking its shapes against the model it will be applied to."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    stem = _stem(path)
    path, meta_path = Path(stem + ".safetensors"), Path(stem + ".json")
    if not path.exists():
        raise ProbeLoadError(f"{path}: file is missing")
    try:
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        problem = mismatch(path, meta.get("sha256"), meta_path.name) if isinstance(meta, dict) else None
        if problem:
            raise ProbeLoadError(problem)
        tensors = load_file(str(path))
    except (SafetensorError, OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProbeLoadError(f"{path}: not a readable probe ({exc})") from exc
    weight = tensors.get("weight")
    if weight is None or weight.dim() != 4 or weight.shape[1] != weight.shape[2]:
        raise ProbeLoadError(f"{path}: expected 'weight' of shape (d_model, size, size, n_classes), got {None if weight is None else tuple(weight.shape)}")
    if d_model is not None and weight.shape[0] != d_model:
        raise ProbeLoadError(f"{path}: probe is for d_model {weight.shape[0]}, the model has {d_model}")
    if size is not None and weight.shape[1] != size:
        raise ProbeLoadError(f"{path}: probe is for a {weight.shape[1]}x{weight.shape[1]} board, the game is {size}x{size}")
    bias = tensors.get("bias", torch.zeros(weight.shape[1:]))
    return Probe(weight.float(), bias.float(), meta)


def import_nanda_probe(path: str | Path, mode: str = "average") -> Probe:
    """Nanda's ``main_linear_probe.pth`` ``(3 modes, d_model, 8, 8, 3)`` -> a ``mine_theirs_empty`` probe.

    Modes: 0 = black to play, 1 = white to play, 2 = all moves; options: 0 empty, 1 white,
    2 black. Its "mine" is the player to move next; ours is the player who just moved, so with
    black to play (white just moved) our mine = white, theirs = black, and vice versa.
    ``mode``: ``"black_to_play"``, ``"white_to_play"`` or ``"average"`` of the two (the
    published conversion).
    """
    path = Path(path)
    try:
        full = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise ProbeLoadError(f"{path}: not a readable PyTorch tensor file ({type(exc).__name__})") from exc
    if not isinstance(full, torch.Tensor) or full.dim() != 5 or full.shape[0] != 3 or full.shape[-1] != 3:
        raise ProbeLoadError(f"{path}: expected a tensor of shape (3, d_model, 8, 8, 3), got {getattr(full, 'shape', type(full).__name__)}")
    full = full.float()
    black_to_play = torch.stack([full[0, ..., 0], full[0, ..., 1], full[0, ..., 2]], -1)  # mover white
    white_to_play = torch.stack([full[1, ..., 0], full[1, ..., 2], full[1, ..., 1]], -1)  # mover black
    choices = {"black_to_play": black_to_play, "white_to_play": white_to_play, "average": 0.5 * (black_to_play + white_to_play)}
    if mode not in choices:
        raise ValueError(f"mode must be one of {', '.join(choices)}")
    weight = choices[mode]
    meta = {"target": "mine_theirs_empty", "classes": list(TARGETS["mine_theirs_empty"]), "source": str(path), "imported_mode": mode, "hook": None}
    return Probe(weight, torch.zeros(weight.shape[1:]), meta)


# -- probe sets on disk (bundled in assets/probes/<model>/) -------------------------------------

PROBE_ROOT = Path(__file__).resolve().parents[3] / "assets" / "probes"
SUMMARY = "summary.json"


def save_probe_set(probes: dict[str, Probe], folder: str | Path) -> None:
    """``folder/<target>/<hook>.safetensors`` + ``.json`` for each probe."""
    for hook, probe in probes.items():
        save_probe(probe, Path(folder) / probe.meta["target"] / hook)


def load_probe_set(folder: str | Path, target: str, d_model: int, size: int) -> dict[str, Probe]:
    """All saved probes of ``target`` in ``folder``, keyed by hook, in layer order."""
    files = sorted((Path(folder) / target).glob("*.safetensors"), key=lambda p: _hook_order(_stem(p.name)))
    return {_stem(p.name): load_probe(p, d_model, size) for p in files}


def _hook_order(hook: str) -> tuple[int, int]:
    parts = hook.split(".")
    kinds = {"hook_resid_pre": 0, "hook_resid_mid": 1, "hook_resid_post": 2}
    return (int(parts[1]), kinds.get(parts[-1], 3)) if len(parts) > 2 and parts[1].isdigit() else (10**6, 0)


def read_summary(folder: str | Path) -> dict:
    """Per target: hooks, held-out accuracy of the trained model's probes and of the random-init baseline."""
    path = Path(folder) / SUMMARY
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, OSError):
        return {}


def summary_entry(probes: dict[str, Probe], baseline: dict[str, Probe] | None) -> dict:
    hooks = list(probes)
    entry = {
        "hooks": hooks,
        "accuracy": [probes[h].meta["held_out"]["accuracy"] for h in hooks],
        "board_exact": [probes[h].meta["held_out"]["board_exact"] for h in hooks],
        "train_games": next(iter(probes.values())).meta["train_games"],
        "test_games": next(iter(probes.values())).meta["test_games"],
    }
    if baseline:
        entry["random_accuracy"] = [baseline[h].meta["held_out"]["accuracy"] for h in hooks]
    return entry


def training_verdict(probes: dict[str, Probe], before: dict | None) -> str:
    """What a training run found, in words, beside the probes it replaces (``before``: their
    summary entry, if any)."""
    hooks = list(probes)
    accuracy = [probes[h].meta["held_out"]["accuracy"] for h in hooks]
    best = int(np.argmax(accuracy))
    meta = probes[hooks[best]].meta
    layer = f"L{meta['layer']}"
    text = f"Trained {len(hooks)} {meta['target']} probes on {meta['train_games']:,} games (scored on {meta['test_games']:,} held-out games): best layer {layer}, {accuracy[best]:.1%} per square"
    occupied = meta["held_out"].get("occupied_accuracy")
    if occupied is not None:
        text += f", {occupied:.1%} on occupied squares"
    if before and before.get("accuracy"):
        old = max(before["accuracy"])
        change = "the same as" if abs(old - accuracy[best]) < 0.0005 else ("better than" if accuracy[best] > old else "worse than")
        text += f"; {change} the probes it replaces ({old:.1%}, {before.get('train_games', '?')} training games)"
        if before.get("random_accuracy"):
            text += f"; a randomly initialised model's probes reach {max(before['random_accuracy']):.1%}"
    return text + "."


def write_summary(folder: str | Path, target: str, entry: dict) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    summary = read_summary(folder)
    summary[target] = entry
    (folder / SUMMARY).write_text(json.dumps(summary, indent=1) + "\n")


# -- one position ------------------------------------------------------------------------------


def _read_tokens(game: Game, moves: tuple[int, ...]) -> torch.Tensor | None:
    """``(1, pos)``: the game up to the token where its last move's board is read (as in
    training); None before the first move or past the context."""
    moves = game.fit_moves(moves)
    if not moves:
        return None
    at = int(game.move_positions(np.array([moves]))[0, -1])
    if at < 0:
        return None
    return torch.from_numpy(game.game_tokens(moves)[None, : at + 1])


def position_pass(handle: ModelHandle, moves: tuple[int, ...], hooks: list[str]):
    """One cached pass over the game up to where its last move's board is read, keeping ``hooks``
    and every layer's keys and values: the probes read it (``probe_position(run=...)``) and an
    intervention at that position continues from it (``move_edits.greedy_moves(run=...)``)
    instead of a pass of its own. None where ``probe_position`` reads nothing."""
    from core.interp.shared.position_run import PositionRun

    tokens = _read_tokens(handle.game, moves)
    if tokens is None:
        return None
    wanted = set(hooks)
    logits, cache = handle.run_with_cache(tokens, names_filter=lambda name: name in wanted or name.endswith(("attn.hook_k", "attn.hook_v")))
    return PositionRun(tokens, logits, cache)


def probe_position(handle: ModelHandle, probes: dict[str, Probe], moves: tuple[int, ...], run=None) -> dict[str, np.ndarray]:
    """Class probabilities ``(size, size, n_classes)`` of each probe after the last of ``moves``.

    One cached forward pass serves every layer; ``run``: that pass already made
    (``position_pass``), read when it is of these tokens and holds these hooks.
    """
    tokens = _read_tokens(handle.game, moves)
    if tokens is None:
        return {}
    if run is not None and run.tokens.shape == tokens.shape and torch.equal(run.tokens, tokens) and all(h in run.cache.cache_dict for h in probes):
        cache = run.cache
    else:
        wanted = set(probes)
        _, cache = handle.run_with_cache(tokens, names_filter=lambda name: name in wanted)
    return {hook: probe.probs(cache[hook][0, -1]).numpy() for hook, probe in probes.items()}


