"""SAE quality on held-out games, each metric defined once (DESIGN.md §8).

* FVU = sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 over the held-out positions.
* L0 = mean number of features > 0 per position; MSE = mean squared error per element.
* dead = fraction of features that never fire on the held-out set; dense = fraction firing on
  more than 10 % of positions.
* CE loss recovered = (CE_ablated - CE_sae) / (CE_ablated - CE_clean), where CE is the next-move
  cross-entropy against the move actually played next, with the hook's activation replaced by the
  SAE reconstruction, by zeros, or by its mean.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from core.games.base import Game
from core.interp.shared.activations import collect, token_activations
from core.models.handle import ModelHandle, resume_layer

SAE_EVAL_SEED = 3_000_033
DENSE_THRESHOLD = 0.1


def _next_move_ce(logits: torch.Tensor, games: np.ndarray, game: Game) -> float:
    """Mean cross-entropy of the prediction at token p against token p+1, over tokens that exist."""
    target = torch.from_numpy(game.batch_tokens(games, game.n_ctx + 1)[:, 1:])
    valid = torch.from_numpy(game.batch_token_mask(games, game.n_ctx + 1)[:, 1:])
    n = min(logits.shape[1], target.shape[1])
    ce = F.cross_entropy(logits[:, :n].float().reshape(-1, logits.shape[-1]), target[:, :n].reshape(-1), reduction="none").reshape(len(games), n)
    return float(ce[valid[:, :n]].mean())


def summarise(x: torch.Tensor, feats: torch.Tensor, recon: torch.Tensor, ce_clean: float, ce_sae: float, ce_zero: float, ce_mean: float) -> dict:
    """The metrics of the module docstring from activations ``x (n, d)``, the SAE's features and
    reconstruction of them, and the four cross-entropies (every corpus, game or text, ends here)."""
    active = feats > 0
    density = active.float().mean(0)
    mean = x.mean(0)
    return {
        "fvu": float(((x - recon) ** 2).sum() / ((x - mean) ** 2).sum()),
        "mse": float(((x - recon) ** 2).mean()),
        "l0": float(active.float().sum(-1).mean()),
        "dead_fraction": float((density == 0).float().mean()),
        "dense_fraction": float((density > DENSE_THRESHOLD).float().mean()),
        "ce_clean": ce_clean,
        "ce_sae": ce_sae,
        "ce_zero_ablation": ce_zero,
        "ce_mean_ablation": ce_mean,
        "ce_recovered_zero": (ce_zero - ce_sae) / (ce_zero - ce_clean),
        "ce_recovered_mean": (ce_mean - ce_sae) / (ce_mean - ce_clean),
    }


@torch.no_grad()
def sae_metrics(handle: ModelHandle, sae, hook: str, n_games: int = 200, seed: int = SAE_EVAL_SEED, centred: bool = False, games: np.ndarray | None = None) -> dict:
    """``centred``: the SAE reads the residual stream of a model with centred writing weights
    (TransformerLens's processing); FVU and MSE are then measured on the centred activations, the
    space the SAE reconstructs (a LayerNorm downstream ignores the per-position mean).
    ``games``: a corpus's games, read instead of ``n_games`` random ones."""
    game = handle.game
    games = game.random_games(n_games, seed=seed) if games is None else games
    tokens = torch.from_numpy(game.batch_tokens(games))
    layer = resume_layer(hook) if handle.cfg.positional_embedding_type != "shortformer" else None
    if layer is not None:
        # One pass gives the clean output and the hook's activations; each replacement then runs
        # only the blocks after the hook (the ones below it would compute the same again).
        clean_logits, acts = handle.forward_keeping(tokens, hook)
        x = acts[torch.from_numpy(game.batch_token_mask(games))].float()  # every token: the positions the splice replaces
    else:
        clean_logits, acts = handle.forward(tokens), None
        x = token_activations(handle, games, [hook])[hook]
    if centred:
        x = x - x.mean(-1, keepdim=True)
    feats = sae.encode(x)
    recon = sae.decode(feats)
    mean = x.mean(0)

    def replaced(fn):
        def on_device(act: torch.Tensor) -> torch.Tensor:  # the SAE and the mean live on x's device
            return fn(act.to(x.device)).to(act.device, act.dtype)

        if acts is not None:
            return _next_move_ce(handle.forward_from(acts, layer, on_device), games, game)
        return _next_move_ce(handle.run_with_hooks(tokens, [(hook, lambda act, hook: on_device(act))]), games, game)

    ce_clean = _next_move_ce(clean_logits, games, game)
    ce_sae = replaced(lambda a: sae.decode(sae.encode(a.reshape(-1, a.shape[-1]))).reshape(a.shape))
    ce_zero = replaced(torch.zeros_like)
    ce_mean = replaced(lambda a: mean.expand_as(a))
    return {**summarise(x, feats, recon, ce_clean, ce_sae, ce_zero, ce_mean), "positions": int(len(x)), "games": int(len(games))}


@torch.no_grad()
def board_scores(handle: ModelHandle, sae, hook: str, n_games: int = 300, seed: int = SAE_EVAL_SEED + 1, random_handle: ModelHandle | None = None, games: np.ndarray | None = None) -> dict:
    """Coverage and board reconstruction of the SAE's features, beside the same layer's MLP neurons
    (and, if given, the MLP neurons of a randomly initialised copy of the model), overall and per
    property set of the paper (``"sets"``: coverage of each, board reconstruction of each board set)."""
    from core.interp.sae.board_metrics import board_reconstruction, board_reconstruction_paper, coverage
    from core.interp.shared.board_properties import board_classes, board_properties, property_sets

    layer = int(hook.split(".")[1])
    neurons_hook = f"blocks.{layer}.mlp.hook_post"
    games = handle.game.random_games(n_games, seed=seed) if games is None else games
    data = collect(handle, games, sorted({hook, neurons_hook}))
    props, _ = board_properties(data.replay, data.valid, handle.game)
    n_classes, n_squares = board_classes(handle.game), handle.game.n_squares
    units = {"sae_features": sae.encode(data.acts[hook]), "mlp_neurons": data.acts[neurons_hook]}
    if random_handle is not None:
        units["random_init_neurons"] = collect(random_handle, games, [neurons_hook]).acts[neurons_hook]
    sets = property_sets(handle.game)
    masks = {name: mask for name, (_, mask) in sets.items() if mask is not None}
    present = props.any(0)
    out = {}
    for name, acts in units.items():
        cov = coverage(acts, props)
        best_f1 = np.array(cov["best_f1"])
        paper = board_reconstruction_paper(acts, props, n_classes, n_squares, masks=masks)
        out[name] = {
            "coverage": cov["coverage"],
            **board_reconstruction(acts, props),  # "board_reconstruction": the mean property F1
            "board_reconstruction_paper": paper["board_reconstruction"],
            "sets": {
                set_name: {
                    "coverage": float(best_f1[idx][present[idx]].mean()) if present[idx].any() else None,
                    "board_reconstruction": paper["sets"][set_name] if mask is not None else None,
                    "properties": int(present[idx].sum()),
                }
                for set_name, (idx, mask) in sets.items()
            },
        }
    return out
