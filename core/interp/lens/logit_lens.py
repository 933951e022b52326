"""How the next-move prediction forms: logit lens, direct logit attribution, attention, neurons.

Tensors in, tensors out. Conventions: ``tokens (batch, pos)``; a *lens point* is a residual stream
read after the embedding, after each attention layer (``mid``) and after each block (``post``).

* **Logit lens**: ``unembed(ln_final(resid))`` at every lens point, with the final LayerNorm
  recomputed on each intermediate residual (the usual lens; the last point is the real logits).
* **Direct logit attribution (DLA)**: the final residual is a sum of parts (token and position
  embeddings, every head's output, each layer's attention bias, each MLP's output). With the final
  LayerNorm's scale frozen at its value for this input, the logit of token ``t`` is exactly
  ``sum_parts (centred part / scale) . (w_ln * W_U[:, t])`` plus the bias terms
  ``b_ln . W_U[:, t] + b_U[t]``. Each summand is that part's direct effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from core.interp.shared.predictions import game_tokens
from core.models import row_forward
from core.models.handle import ModelHandle
from core.interp.shared.position_run import PositionRun
from core.interp.shared.token_squares import _on_squares, game_batch


def lens_hooks(n_layers: int, incl_mid: bool = True) -> list[tuple[str, str]]:
    """``(label, hook)`` of every lens point in forward order."""
    points = [("embed", "blocks.0.hook_resid_pre")]
    for layer in range(n_layers):
        if incl_mid:
            points.append((f"L{layer} attn", f"blocks.{layer}.hook_resid_mid"))
        points.append((f"L{layer} mlp", f"blocks.{layer}.hook_resid_post"))
    return points


def _unembed(model, resid: torch.Tensor) -> torch.Tensor:
    return model.unembed(model.ln_final(resid))


def logit_lens(handle: ModelHandle, tokens: torch.Tensor, incl_mid: bool = True, run: PositionRun | None = None) -> tuple[list[str], torch.Tensor]:
    """Labels and lens logits ``(n_points, batch, pos, d_vocab)``; the last point equals the model's
    logits. ``run``: a cached pass of ``tokens`` to read instead of a new one."""
    points = lens_hooks(handle.cfg.n_layers, incl_mid)
    wanted = {h for _, h in points}
    with handle.session() as model, torch.inference_mode():
        cache = run.cache if run is not None else row_forward.cached_pass(model, tokens, wanted)  # the corpus-wide chart: fused where it can be
        logits = torch.stack([_unembed(model, cache[h]) for _, h in points])
    return [label for label, _ in points], logits


def agreement_with_final(logits: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """How far each lens point's read-out is from the model's output at one position
    (``logits (n_points, d_vocab)``, the last point the output itself): the rank of the output's
    top-1 token in each read-out (1 = already the top) and KL(output ‖ read-out) in nats."""
    logp = logits.float().log_softmax(-1)
    final = logp[-1]
    top = int(final.argmax())
    rank = (logp > logp[:, top : top + 1]).sum(-1) + 1
    kl = (final.exp() * (final - logp)).sum(-1).clamp(min=0.0)
    return rank.numpy(), kl.numpy()


LENS_BATCH_ELEMENTS = 4_000_000  # lens logits per batch (16 MB in float32): bounds a hosted server's peak memory


def lens_legality(handle: ModelHandle, games: np.ndarray, incl_mid: bool = True, batch_size: int = 0) -> dict:
    """Per lens point, over every position of ``games``: top-1 legal rate and illegal mass.

    ``batch_size`` 0: as many games per forward pass as keep the lens logits (points x games x
    positions x vocabulary) near ``LENS_BATCH_ELEMENTS``; the totals do not depend on it.
    """
    game = handle.game
    if not batch_size:
        per_game = len(lens_hooks(handle.cfg.n_layers, incl_mid)) * game.n_ctx * handle.cfg.d_vocab
        batch_size = max(1, LENS_BATCH_ELEMENTS // per_game)
    top1 = mass = None
    labels: list[str] = []
    n_pos = 0
    kinds = game.legality_kinds(game.token_batch(np.asarray(games[:1])))[0]
    kind_hits = {k: None for k in kinds}
    kind_n = {k: 0 for k in kinds}
    for start in range(0, len(games), batch_size):
        batch = game.token_batch(np.asarray(games[start : start + batch_size]))
        labels, logits = logit_lens(handle, torch.from_numpy(batch.tokens), incl_mid)  # (P, B, T, V)
        legal_t, valid_t = torch.from_numpy(batch.legal), torch.from_numpy(batch.valid)
        hit = legal_t[None].expand_as(logits).gather(-1, logits.argmax(-1, keepdim=True)).squeeze(-1)  # (P, B, T)
        illegal = 1.0 - (logits.softmax(-1) * legal_t).sum(-1)
        part_top1 = (hit & valid_t).sum((1, 2)).double()
        part_mass = (illegal * valid_t).sum((1, 2)).double()
        top1 = part_top1 if top1 is None else top1 + part_top1
        mass = part_mass if mass is None else mass + part_mass
        n_pos += int(valid_t.sum())
        if len(kinds) > 1:
            kind_of = game.legality_kinds(batch)[1]
            for i, k in enumerate(kinds):
                sel = valid_t & torch.from_numpy(kind_of == i)
                h = (hit & sel).sum((1, 2)).double()
                kind_hits[k] = h if kind_hits[k] is None else kind_hits[k] + h
                kind_n[k] += int(sel.sum())
    out = {"labels": labels, "top1_legal": (top1 / n_pos).tolist(), "illegal_mass": (mass / n_pos).tolist(), "positions": n_pos, "games": len(games)}
    if len(kinds) > 1:
        out["by_kind"] = {k: (kind_hits[k] / kind_n[k]).tolist() for k in kinds if kind_n[k]}
        out["kind_positions"] = {k: kind_n[k] for k in kinds if kind_n[k]}
    return out


def legal_gap_by_position(handle: ModelHandle, moves: tuple[int, ...], run: PositionRun | None = None, batch=None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per component (embeddings, each layer's attention, each layer's MLP) and per position of the
    game: direct effect on the mean legal next-token logit minus the mean illegal one (among the
    game's ``candidate_tokens``; the final LayerNorm scale frozen per position, as in ``attribute``).

    Returns ``(component labels, gap (components, positions), valid (positions,))``; a position
    with no legal next token (the game is over) is not valid.
    """
    game = handle.game
    tokens = game_tokens(moves, game)
    batch = batch if batch is not None else game_batch(moves, game)
    T = tokens.shape[1]
    legal = torch.from_numpy(batch.legal[0, :T])  # (T, V)
    named = torch.from_numpy(game.candidate_tokens())
    illegal = named[None] & ~legal
    with handle.session() as model, torch.inference_mode():
        cache = run.cache if run is not None else model.run_with_cache(tokens)[1]
        parts = [cache["hook_embed"][0] + cache["hook_pos_embed"][0]]
        labels = ["embed"]
        for layer in range(model.cfg.n_layers):
            parts += [cache[f"blocks.{layer}.hook_attn_out"][0], cache[f"blocks.{layer}.hook_mlp_out"][0]]
            labels += [f"L{layer} attn", f"L{layer} MLP"]
        stack = torch.stack(parts)  # (C, T, d_model)
        scale = cache["ln_final.hook_scale"][0] if "ln_final.hook_scale" in cache.cache_dict else torch.ones(T, 1)
        w_ln = model.ln_final.w if hasattr(model.ln_final, "w") else torch.ones(model.cfg.d_model)
        dla = (stack - stack.mean(-1, keepdim=True)) / scale @ (w_ln[:, None] * model.W_U)  # (C, T, V)
    legal_f, illegal_f = legal.float(), illegal.float()
    mean_legal = (dla * legal_f).sum(-1) / legal_f.sum(-1).clamp(min=1)
    mean_illegal = (dla * illegal_f).sum(-1) / illegal_f.sum(-1).clamp(min=1)
    return labels, (mean_legal - mean_illegal).float().numpy(), batch.valid[0, :T]


# -- direct logit attribution ---------------------------------------------------------------------


@dataclass
class Attribution:
    """Direct effects on every next-move logit at one position.

    ``dla (n_parts, d_vocab)``: each part's direct effect on each token's logit; ``bias (d_vocab,)``:
    the LayerNorm-bias and unembedding-bias terms; ``logits (d_vocab,)`` the model's logits, equal
    to ``dla.sum(0) + bias``. ``neuron_dla (n_layers, d_mlp, d_vocab)``: each MLP neuron's share
    (the layer's MLP part minus its output bias).
    """

    labels: list[str]
    kinds: list[str]  # "embed" | "head" | "attn_bias" | "mlp"
    layers: list[int]  # -1 for embeddings
    dla: torch.Tensor
    bias: torch.Tensor
    logits: torch.Tensor
    neuron_dla: torch.Tensor
    neuron_acts: torch.Tensor  # (n_layers, d_mlp)

    def head_grid(self, token: int) -> np.ndarray:
        """``(n_layers, n_heads)`` direct effects of the heads on ``token``."""
        rows = [i for i, k in enumerate(self.kinds) if k == "head"]
        n_layers = max(self.layers) + 1
        return self.dla[rows, token].reshape(n_layers, -1).numpy()

    def legal_minus_illegal(self, legal_tokens: np.ndarray, candidates: np.ndarray | None = None) -> torch.Tensor:
        """Per part: mean effect on legal tokens minus mean effect on illegal ones; the illegal ones
        are the ``candidates`` (tokens that could stand there, e.g. every square) that are not legal
        (default: every token but the pad, token 0)."""
        return (self.dla.double() @ legal_minus_illegal_readout(legal_tokens, candidates)).float()


def attribute(handle: ModelHandle, moves: tuple[int, ...], position: int = -1, run: PositionRun | None = None) -> Attribution:
    """DLA of every part of the final residual at ``position`` of the game ``moves`` (``run``: a
    cached pass of that game to read instead of a new one)."""
    cfg = handle.cfg
    with handle.session() as model, torch.inference_mode():
        logits, cache = (run.logits, run.cache) if run is not None else model.run_with_cache(game_tokens(moves, handle.game))
        parts, labels, kinds, layers = [cache["hook_embed"][0, position], cache["hook_pos_embed"][0, position]], ["token embed", "pos embed"], ["embed", "embed"], [-1, -1]
        neuron_out = []
        for layer in range(cfg.n_layers):
            z = cache[f"blocks.{layer}.attn.hook_z"][0, position]  # (head, d_head)
            heads = torch.einsum("hd,hdm->hm", z, model.blocks[layer].attn.W_O)
            parts += list(heads) + [model.blocks[layer].attn.b_O]
            labels += [f"L{layer}H{h}" for h in range(cfg.n_heads)] + [f"L{layer} attn bias"]
            kinds += ["head"] * cfg.n_heads + ["attn_bias"]
            layers += [layer] * (cfg.n_heads + 1)
            parts.append(cache[f"blocks.{layer}.hook_mlp_out"][0, position])
            labels.append(f"L{layer} MLP")
            kinds.append("mlp")
            layers.append(layer)
            post = cache[f"blocks.{layer}.mlp.hook_post"][0, position]  # (d_mlp,)
            neuron_out.append(post)
        stack = torch.stack(parts)  # (n_parts, d_model)
        scale = cache["ln_final.hook_scale"][0, position] if "ln_final.hook_scale" in cache.cache_dict else torch.ones(1)
        w_ln = model.ln_final.w if hasattr(model.ln_final, "w") else torch.ones(cfg.d_model)
        b_ln = model.ln_final.b if hasattr(model.ln_final, "b") else torch.zeros(cfg.d_model)
        readout = w_ln[:, None] * model.W_U  # (d_model, d_vocab)
        centred = stack - stack.mean(-1, keepdim=True)
        dla = centred / scale @ readout
        bias = b_ln @ model.W_U + model.b_U
        acts = torch.stack(neuron_out)  # (n_layers, d_mlp)
        neuron_dla = acts[..., None] * (_neuron_readout(handle) / scale)  # (L, d_mlp, d_vocab)
    return Attribution(labels, kinds, layers, dla.float(), bias.float(), logits[0, position].float(), neuron_dla.float(), acts.float())


@lru_cache(maxsize=8)
def _neuron_readout(handle: ModelHandle) -> torch.Tensor:
    """``(n_layers, d_mlp, d_vocab)``: each neuron's centred output weights read through the final
    LayerNorm weight and the unembedding, once per model (only the LayerNorm scale depends on the
    input: ~0.1 G multiply-adds saved per position for an 8 x 1024-neuron model)."""
    model = handle.model
    with torch.inference_mode():
        w_ln = model.ln_final.w if hasattr(model.ln_final, "w") else torch.ones(model.cfg.d_model, device=model.W_U.device)
        w_out = torch.stack([model.blocks[layer].mlp.W_out for layer in range(model.cfg.n_layers)])  # (L, d_mlp, d_model)
        return (w_out - w_out.mean(-1, keepdim=True)) @ (w_ln[:, None] * model.W_U)


def legal_minus_illegal_readout(legal_tokens: np.ndarray, candidates: np.ndarray | None = None) -> torch.Tensor:
    """``(d_vocab,)`` weights that turn per-token effects into "mean over legal tokens minus mean
    over illegal ones" (illegal: the ``candidates`` that are not legal; default every token but
    the pad, token 0)."""
    legal = torch.from_numpy(np.asarray(legal_tokens, dtype=bool))
    if candidates is None:
        illegal = ~legal
        illegal[0] = False
    else:
        illegal = torch.from_numpy(np.asarray(candidates, dtype=bool)) & ~legal
    return legal.double() / max(int(legal.sum()), 1) - illegal.double() / max(int(illegal.sum()), 1)


def top_neurons(attr: Attribution, token: int, k: int = 10, readout: torch.Tensor | None = None, layer: int | None = None) -> list[dict]:
    """The ``k`` neurons with the largest absolute direct effect on ``token`` (or on
    ``readout @ logits``, e.g. ``legal_minus_illegal_readout``), of every layer or of ``layer``."""
    effect = attr.neuron_dla[..., token] if readout is None else (attr.neuron_dla.double() @ readout).float()
    first = 0
    if layer is not None:
        effect, first = effect[layer : layer + 1], layer
    flat = effect.abs().reshape(-1).topk(min(k, effect.numel())).indices
    d_mlp = effect.shape[1]
    return [
        {"neuron": f"L{first + int(i) // d_mlp}N{int(i) % d_mlp}", "layer": first + int(i) // d_mlp, "index": int(i) % d_mlp, "activation": float(attr.neuron_acts.reshape(-1)[i]), "direct effect": float(effect.reshape(-1)[i])}
        for i in flat
    ]


# -- attention ------------------------------------------------------------------------------------


def attention_patterns(handle: ModelHandle, moves: tuple[int, ...], run: PositionRun | None = None) -> np.ndarray:
    """``(n_layers, n_heads, pos, pos)`` attention of every head for the game ``moves``."""
    if run is not None:
        cache = run.cache
    else:
        _, cache = handle.run_with_cache(game_tokens(moves, handle.game), names_filter=lambda n: n.endswith("attn.hook_pattern"))
    return torch.stack([cache[f"blocks.{layer}.attn.hook_pattern"][0] for layer in range(handle.cfg.n_layers)]).float().cpu().numpy()


# -- neurons --------------------------------------------------------------------------------------


def neuron_output_board(handle: ModelHandle, layer: int, neuron: int) -> np.ndarray:
    """A neuron's output weights read through the unembedding: ``(size*size,)`` per square."""
    model = handle.model
    with torch.inference_mode():
        per_token = (model.blocks[layer].mlp.W_out[neuron] @ model.W_U).float().numpy()
    return _on_squares(per_token, handle.game)


def neuron_output_tokens(handle: ModelHandle, layer: int, neuron: int) -> np.ndarray:
    """A neuron's output weights read through the unembedding, per token ``(d_vocab,)``, centred
    (for games whose tokens are not squares)."""
    model = handle.model
    with torch.inference_mode():
        per_token = (model.blocks[layer].mlp.W_out[neuron] @ model.W_U).float().cpu().numpy()
    return per_token - per_token.mean()


def neuron_board_correlation(handle: ModelHandle, layer: int, neuron: int, games: np.ndarray) -> np.ndarray:
    """Correlation of one neuron's activation with each square being empty / mine / theirs:
    ``(3, size*size)`` (a row of ``layer_board_correlations``)."""
    return layer_board_correlations(handle, layer, games)[neuron]


def layer_board_correlations(handle: ModelHandle, layer: int, games: np.ndarray) -> np.ndarray:
    """Pearson correlation of every MLP neuron of ``layer`` with each square being empty / mine /
    theirs over every position of ``games`` (mine = the player who just moved):
    ``(d_mlp, 3, size*size)``; 0 where a square's state never varies.

    One pass for the whole layer: the page shows any neuron without another pass over the games.
    """
    from core.interp.shared.board_targets import probe_targets, valid_positions

    game = handle.game
    games = np.asarray(games)[:, : game.n_ctx]
    hook = f"blocks.{layer}.mlp.hook_post"
    tokens = torch.from_numpy(game.batch_tokens(games))
    rep = game.replay(games)
    valid = valid_positions(rep)
    classes = probe_targets(rep, "mine_theirs_empty")[valid]  # (N, sq)
    a = torch.cat([handle.activations(tokens[i : i + 50], [hook])[hook][torch.from_numpy(valid[i : i + 50])] for i in range(0, len(tokens), 50)]).float()
    return board_correlations(a, classes)


def board_correlations(acts: torch.Tensor, classes: np.ndarray) -> np.ndarray:
    """Pearson correlation of each unit's activation ``acts (N, units)`` with each square being
    empty / mine / theirs (``classes (N, squares)`` of 0 / 1 / 2): ``(units, 3, squares)``; 0 where
    a square's state never varies. ``acts`` is standardised in place (float32: one buffer, ~70 MB
    for 300 Othello games, not three in float64)."""
    a = acts
    std = a.std(0, unbiased=False) + 1e-9
    a -= a.mean(0)
    a /= std
    onehot = torch.from_numpy(np.stack([classes == c for c in range(3)], axis=1).reshape(len(classes), -1)).float()  # (N, 3*sq)
    centred = onehot - onehot.mean(0)
    sd = onehot.std(0, unbiased=False)
    corr = (a.T @ centred) / len(a) / sd.clamp(min=1e-9)  # (units, 3*sq)
    corr = torch.where(sd > 0, corr, torch.zeros_like(corr))
    return corr.reshape(corr.shape[0], 3, -1).float().numpy()


