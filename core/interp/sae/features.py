"""What the SAE feature browser shows about each feature, computed once per (model, SAE).

Browsing must be instant, so one pass over held-out games encodes every position and keeps only the
non-zero feature activations (an SAE is sparse: ~L0 per position), grouped by feature and sorted by
value. A feature's top-activating positions, its quantile samples and its activation histogram are
then slices of that table, not forward passes. The same pass scores every feature against the
engine's board properties (best F1 over the Karvonen et al. thresholds, as in ``board_metrics``).

Per-feature weights views use the decoder direction written into the residual stream: for an SAE on
``mlp.hook_post`` (neuron space) that is ``W_dec @ W_out``; for residual and ``*_out`` hooks it is
``W_dec`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.games.base import Game
from core.games.registry import as_game
from core.interp.shared.predictions import game_tokens
from core.interp.shared.activations import collect
from core.models.handle import ModelHandle, block_of, resume_layer
from core.interp.shared.unit_index import FeatureIndex, assemble_index

BROWSER_SEED = 3_000_051  # held-out games for the browser (not the SAE's training or metric games)


def residual_directions(handle: ModelHandle, sae, hook: str) -> torch.Tensor:
    """``(d_sae, d_model)``: what each feature's decoder direction writes into the residual stream."""
    w_dec = sae.W_dec.detach().float()
    if hook.endswith("mlp.hook_post"):
        return w_dec @ handle.model.blocks[block_of(hook)].mlp.W_out.detach().float()
    if w_dec.shape[1] != handle.cfg.d_model:
        raise ValueError(f"an SAE on {hook} (width {w_dec.shape[1]}) has no residual-stream direction")
    return w_dec


def _encode(sae, acts: torch.Tensor, chunk: int = 8192) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Non-zero ``(position, feature, value)`` triples of ``sae.encode`` over ``acts``."""
    pos, feat, val = [], [], []
    with torch.inference_mode():
        for start in range(0, len(acts), chunk):
            f = sae.encode(acts[start : start + chunk]).float()
            p, k = torch.nonzero(f > 0, as_tuple=True)
            pos.append(p + start)
            feat.append(k)
            val.append(f[p, k])
    return torch.cat(pos), torch.cat(feat), torch.cat(val)


def index_games(game: Game) -> int:
    """Games for ~30k indexed positions: 500 Othello games; ~230 chess games (a move there is at
    least two tokens, so a full context holds half as many positions)."""
    per_game = game.n_ctx if game.square_moves else game.n_ctx // 2
    return min(500, max(50, 30_000 // max(per_game, 1)))


def build_index(handle: ModelHandle, sae, hook: str, n_games: int | None = None, seed: int = BROWSER_SEED, progress=None, games: np.ndarray | None = None) -> FeatureIndex:
    """Encode ``n_games`` fresh games once (default ``index_games``), or ``games`` (a corpus's);
    keep the non-zero activations grouped by feature."""
    game = handle.game
    if games is None:
        games = game.random_games(n_games or index_games(game), seed=seed)
    games = games[:, : game.n_ctx]
    data = collect(handle, games, [hook], progress=progress)
    if progress:
        progress("encoding with the SAE", 0.9)
    pos, feat, val = _encode(sae, data.acts[hook])
    if progress:
        progress("matching features to board properties", 0.95)
    return assemble_index(game, hook, games, data.replay, data.valid, pos, feat, val, int(sae.cfg.d_sae))


def logit_effects(handle: ModelHandle, directions: torch.Tensor, feature: int) -> np.ndarray:
    """The decoder direction read directly through the unembedding, per square ``(size*size,)``
    (the direct path only; later layers may change it). Centre squares have no token: 0."""
    game = handle.game
    with torch.inference_mode():
        per_token = (directions[feature] @ handle.model.W_U.float()).numpy()
    token_square = game.token_square()
    named = np.flatnonzero(token_square >= 0)
    out = np.zeros(game.n_squares, dtype=np.float32)
    out[token_square[named]] = per_token[named] - per_token[named].mean()
    return out


def logit_effects_tokens(handle: ModelHandle, directions: torch.Tensor, feature: int) -> np.ndarray:
    """The decoder direction read through the unembedding, per token ``(d_vocab,)``, centred
    (for games whose tokens are not squares)."""
    with torch.inference_mode():
        per_token = (directions[feature] @ handle.model.W_U.float().cpu()).numpy()
    return per_token - per_token.mean()


def decoder_neighbours(sae, feature: int, k: int = 6) -> list[tuple[int, float]]:
    """Features whose decoder directions are closest to this one's: ``(feature, cosine)``.
    Near-duplicates here are a sign of feature splitting."""
    w = torch.nn.functional.normalize(sae.W_dec.detach().float(), dim=-1)
    cos = w @ w[feature]
    cos[feature] = -2.0
    values, index = cos.topk(min(k, len(cos) - 1))
    return [(int(i), float(v)) for i, v in zip(index, values)]


def extreme_squares(values: np.ndarray, size: Game | int, k: int = 4) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """The ``k`` squares with the largest and the smallest values: ``(label, value)`` lists."""
    order = np.argsort(values)
    label = as_game(size).square_label
    return [(label(s), float(values[s])) for s in order[::-1][:k]], [(label(s), float(values[s])) for s in order[:k]]


def probe_cosines(direction: torch.Tensor, probe_weight: torch.Tensor) -> dict[str, np.ndarray]:
    """Cosine of one residual direction with each square's probe directions.

    ``probe_weight (d_model, size, size, 3)`` of a mine/theirs/empty probe. Directions: "mine −
    theirs" (the published one used for interventions) and "empty − occupied".
    """
    w = probe_weight.float().reshape(probe_weight.shape[0], -1, probe_weight.shape[-1])
    dirs = {"mine − theirs": w[..., 1] - w[..., 2], "empty − occupied": w[..., 0] - (w[..., 1] + w[..., 2]) / 2}
    d = direction.float()
    return {name: (torch.nn.functional.cosine_similarity(v, d[:, None], dim=0)).numpy() for name, v in dirs.items()}


def class_cosines(direction: torch.Tensor, probe_weight: torch.Tensor, classes: list[str], k: int = 2) -> dict[str, np.ndarray]:
    """Cosine per square of one residual direction with a class probe's directions
    ``w_class − mean over classes`` (e.g. chess: "white knight"), for the ``k`` classes the
    direction aligns with most strongly (largest |cosine| on any square)."""
    w = probe_weight.float().reshape(probe_weight.shape[0], -1, probe_weight.shape[-1])  # (d, squares, C)
    dirs = w - w.mean(-1, keepdim=True)
    cos = torch.nn.functional.cosine_similarity(dirs, direction.float()[:, None, None], dim=0)  # (squares, C)
    order = cos.abs().amax(0).argsort(descending=True)[:k]
    return {classes[int(c)]: cos[:, c].numpy() for c in order}


def probe_hook_for(hook: str, n_layers: int) -> str | None:
    """The residual-stream probe hook that reads what ``hook`` writes (same block's resid_post;
    for resid_pre, the previous block's)."""
    layer = block_of(hook)
    if layer is None or layer < 0:
        return None
    if hook.endswith("hook_resid_pre"):
        return f"blocks.{layer - 1}.hook_resid_post" if layer > 0 else None
    return f"blocks.{min(layer, n_layers - 1)}.hook_resid_post"


def features_now(handle: ModelHandle, sae, hook: str, moves: tuple[int, ...], k: int = 10) -> list[tuple[int, float]]:
    """The ``k`` most active features at the latest position of a game: ``(feature, value)``."""
    if not moves:
        return []
    tokens = game_tokens(moves, handle.game)
    act = handle.activations(tokens, [hook])[hook][0, -1].float()
    with torch.inference_mode():
        f = sae.encode(act[None])[0].float()
    values, features = f.topk(min(k, len(f)))
    return [(int(i), float(v)) for i, v in zip(features, values) if v > 0]


def _reconstruct(sae, act: torch.Tensor) -> torch.Tensor:
    """The SAE's reconstruction of ``act (..., d_in)``, in ``act``'s dtype and device (the SAE may
    live elsewhere: the CPU)."""
    flat = act.reshape(-1, act.shape[-1]).float().to(sae.device)
    with torch.inference_mode():
        return sae.decode(sae.encode(flat)).reshape(act.shape).to(act.device, act.dtype)


def spliced_next_tokens(handle: ModelHandle, sae, hook: str, moves: tuple[int, ...]) -> np.ndarray:
    """Next-token probabilities ``(d_vocab,)`` at the latest position with the SAE's
    reconstruction replacing the hook's activation at every position."""
    tokens = game_tokens(moves, handle.game)
    return handle.run_with_hooks(tokens, [(hook, lambda act, hook: _reconstruct(sae, act))])[0, -1].float().softmax(-1).numpy()


@dataclass
class SpliceNow:
    """The SAE page's "now" panel at the latest position of a game."""

    features: list[tuple[int, float]]  # the most active features, ``(feature, value)``, value > 0
    clean: np.ndarray  # (d_vocab,) next-token probabilities
    spliced: np.ndarray  # (d_vocab,) the same with the SAE's reconstruction at ``hook`` (every position)


def splice_now(handle: ModelHandle, sae, hook: str, moves: tuple[int, ...], k: int = 10) -> SpliceNow | None:
    """``features_now``, the next-token distribution and ``spliced_next_tokens`` from one pass and
    a part of one: the clean pass keeps the hook's activations, and where the hook is a residual
    stream between blocks the spliced pass starts there from their reconstruction (the blocks
    below it compute the same with and without the splice). None before the first move."""
    if not moves:
        return None
    tokens = game_tokens(moves, handle.game)
    logits, acts = handle.forward_keeping(tokens, hook)
    with torch.inference_mode():
        f = sae.encode(acts[0, -1].float()[None].to(sae.device))[0].float().cpu()
    values, features = f.topk(min(k, len(f)))
    layer = resume_layer(hook) if handle.cfg.positional_embedding_type != "shortformer" else None
    if layer is None:
        spliced = spliced_next_tokens(handle, sae, hook, moves)
    else:
        spliced = handle.forward_from(acts, layer, lambda x: _reconstruct(sae, x))[0, -1].float().softmax(-1).numpy()
    return SpliceNow([(int(i), float(v)) for i, v in zip(features, values) if v > 0], logits[0, -1].float().softmax(-1).numpy(), spliced)


def spliced_probs(handle: ModelHandle, sae, hook: str, moves: tuple[int, ...]) -> np.ndarray:
    """Next-token probabilities per square ``(n_squares,)`` at the latest position with the SAE's
    reconstruction replacing the hook's activation (the seed notebook's check; the clean
    distribution, from the same input, is ``predictions.predict``'s, which the app already caches)."""
    return on_squares(handle.game, spliced_next_tokens(handle, sae, hook, moves))


def on_squares(game: Game, token_probs: np.ndarray) -> np.ndarray:
    """``(n_squares,)``: the probabilities of the tokens that name a square, on their squares."""
    token_square = game.token_square()
    named = np.flatnonzero(token_square >= 0)
    out = np.zeros(game.n_squares, dtype=np.float32)
    out[token_square[named]] = token_probs[named]
    return out
