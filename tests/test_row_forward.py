"""Rows continuing a shared prefix (``core.models.row_forward``) give ``HookedTransformer``'s numbers
for every architecture it accepts, and the architectures it does not accept go to TransformerLens."""

from __future__ import annotations

import pytest
import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig
from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

from core.models import row_forward as RF
from core.models.registry import load_model
from tests.rounding import activations_bound, assert_as_exact, float64_copy, forward_bound, longest_sum, one_rounding_effect

SMALL = dict(n_layers=2, d_model=32, n_heads=4, d_head=8, d_mlp=64, n_ctx=64, d_vocab=23, seed=0)
NAMES = ["blocks.0.hook_resid_pre", "blocks.0.hook_resid_mid", "blocks.1.hook_resid_post", "blocks.1.hook_resid_mid", "blocks.0.mlp.hook_post", "blocks.1.mlp.hook_pre"]


def _served(model) -> list[str]:
    """The names of ``NAMES`` the model has (an attention-only model has no MLP or mid stream)."""
    return [n for n in NAMES if not (model.cfg.attn_only and ("mid" in n or ".mlp." in n))]


def _tiny(**overrides) -> HookedTransformer:
    model = HookedTransformer(HookedTransformerConfig(**{**SMALL, "act_fn": "gelu", "normalization_type": "LN", **overrides}))
    torch.manual_seed(1)
    with torch.no_grad():  # biases and norms away from their zero / one initial values, as after training
        for name, p in model.named_parameters():
            if name.endswith(("b_Q", "b_K", "b_V", "b_O", "b_in", "b_out", ".b", ".w", "b_U")):
                p.add_(0.3 * torch.randn_like(p))
    return model.eval()


def _prefix_keys(model, prefix: torch.Tensor):
    cache = TransformerLensKeyValueCache.init_cache(model.cfg, model.cfg.device, 1)
    with torch.inference_mode():
        model(prefix[None], past_kv_cache=cache, attention_mask=torch.ones((1, len(prefix)), dtype=torch.int))
    return RF.prefix_keys([(e.past_keys, e.past_values) for e in cache.entries])


@pytest.mark.parametrize("overrides", [{}, {"act_fn": "gelu_new"}, {"act_fn": "relu", "normalization_type": "LNPre"}, {"attn_only": True}, {"normalization_type": None}])
def test_rows_equal_the_whole_forward_of_prefix_and_row(overrides):
    """Rows run after a cached prefix equal TransformerLens's whole pass within the float32
    rounding of the logits and of the activations (``tests.rounding.forward_bound``,
    ``activations_bound``): the same network, its sums blocked differently."""
    model = _tiny(**overrides)
    assert RF.supports(model)
    names = _served(model)
    assert RF.serves(model, names) and not RF.serves(model, ["blocks.0.attn.hook_pattern"]) and not RF.serves(model, ["blocks.2.hook_resid_post"])
    assert RF.serves(model, ["blocks.0.mlp.hook_post"]) != model.cfg.attn_only
    torch.manual_seed(2)
    prefix, rows = torch.randint(0, 23, (17,)), torch.randint(0, 23, (6, 5))
    logits, acts = RF.run_rows(model, _prefix_keys(model, prefix), rows, names)
    with torch.inference_mode():
        full, cache = model.run_with_cache(torch.cat([prefix.expand(len(rows), -1), rows], 1))
    whole_tokens = torch.cat([prefix.expand(len(rows), -1), rows], 1)
    torch.testing.assert_close(logits, full[:, len(prefix):], atol=forward_bound(model, whole_tokens), rtol=0)
    bound = activations_bound(model, whole_tokens, names)
    for name in names:
        torch.testing.assert_close(acts[name], cache[name][:, len(prefix):], atol=bound, rtol=0)


@pytest.mark.parametrize("overrides", [{"positional_embedding_type": "rotary", "rotary_dim": 8}, {"n_key_value_heads": 2}, {"parallel_attn_mlp": True}, {"attn_scores_soft_cap": 30.0}])
def test_other_architectures_are_left_to_transformer_lens(overrides):
    assert not RF.supports(_tiny(**overrides))


def test_a_solu_mlps_neurons_are_left_to_transformer_lens():
    """SoLU's MLP has a layer norm after its activation: its hidden units are not computed here."""
    model = _tiny(act_fn="solu_ln")
    assert RF.serves(model, ["blocks.0.hook_resid_post"]) and not RF.serves(model, ["blocks.0.mlp.hook_post"])


def test_a_handles_rows_equal_its_forward_on_the_bundled_pgn_model():
    """The board player's and the move lens's path (``prefix_session``) on a trained model."""
    handle = load_model("chess-pgn")
    assert RF.supports(handle.model)
    game = handle.game
    moves = game.random_games(1, seed=5)[0]
    prefix = torch.from_numpy(game.game_tokens([int(m) for m in moves[:30] if m >= 0]))
    torch.manual_seed(3)
    rows = torch.randint(0, game.d_vocab if hasattr(game, "d_vocab") else handle.cfg.d_vocab, (40, 6))
    names = ["blocks.0.hook_resid_pre", "blocks.3.hook_resid_mid", "blocks.5.hook_resid_post"]
    with handle.prefix_session(prefix) as (_, continue_rows):
        logits, acts = continue_rows(rows, names=names)
        assert torch.equal(continue_rows(rows), logits)
    whole = torch.cat([prefix.expand(len(rows), -1), rows], 1)
    with torch.inference_mode():
        full = handle.model(whole)[:, len(prefix):]  # TransformerLens's own forward
    torch.testing.assert_close(logits, full, atol=1e-4, rtol=1e-5)
    fused = handle.forward(whole)[:, len(prefix):]  # the handle's: fused causal attention
    # Every float32 answer against the exact one (the model in float64): as close as TL's own
    # (tests/rounding.py argues both bounds from float32 rounding).
    exact = float64_copy(handle.model)
    score = lambda model: model(whole)[:, len(prefix):].log_softmax(-1)  # noqa: E731
    with torch.inference_mode():
        truth = score(exact)
    effect, n = one_rounding_effect(exact, score), longest_sum(handle.cfg, whole.shape[1])
    for label, ours in (("rows", logits), ("fused", fused)):
        assert_as_exact(label, ours.double().log_softmax(-1), full.double().log_softmax(-1), truth, effect, n)
    assert handle.cfg.dtype == torch.float32 and next(handle.model.parameters()).dtype == torch.float32  # the shared model untouched


@pytest.mark.parametrize("overrides", [{}, {"act_fn": "gelu_new"}, {"act_fn": "relu", "normalization_type": "LNPre"}, {"attn_only": True}, {"normalization_type": None}])
def test_whole_sequences_equal_transformer_lens_residual_streams_and_neurons(overrides):
    """The fused whole pass, a pass resumed from the stream and an early stop equal
    TransformerLens's within the float32 rounding of the logits and activations
    (``tests.rounding.forward_bound``, ``activations_bound``)."""
    model = _tiny(**overrides)
    names = _served(model)
    torch.manual_seed(4)
    tokens = torch.randint(0, 23, (5, 19))
    acts = RF.run_whole(model, tokens, names)
    with torch.inference_mode():
        logits, cache = model.run_with_cache(tokens)
    whole, kept = RF.forward_whole(model, tokens, names[:1])
    logit_bound, act_bound = forward_bound(model, tokens), activations_bound(model, tokens, names + ["blocks.0.hook_resid_post"])
    torch.testing.assert_close(whole, logits, atol=logit_bound, rtol=0)
    assert torch.equal(kept[names[0]], acts[names[0]])  # the same pass as run_whole's
    for start in (0, 1, 2):  # resumed from the stream before block ``start`` (2: only the unembedding)
        resid = cache[f"blocks.{start}.hook_resid_pre"] if start < 2 else cache["blocks.1.hook_resid_post"]
        torch.testing.assert_close(RF.forward_from(model, resid, start), logits, atol=logit_bound, rtol=0)
    assert set(acts) == set(names)
    for name in names:
        torch.testing.assert_close(acts[name], cache[name], atol=act_bound, rtol=0)
    early = RF.run_whole(model, tokens, ["blocks.0.hook_resid_post"], stop_at_layer=1)
    torch.testing.assert_close(early["blocks.0.hook_resid_post"], cache["blocks.0.hook_resid_post"], atol=act_bound, rtol=0)


def test_a_handles_corpus_activations_equal_transformer_lens_and_are_as_exact():
    """``ModelHandle.activations`` (probes, SAEs, indexes) on a trained model: residual streams
    through the fused pass equal TransformerLens's cached pass and are as close as it is to the
    model in float64; other hooks still come from TransformerLens."""
    handle = load_model("chess-pgn")
    game = handle.game
    tokens = torch.from_numpy(game.batch_tokens(game.random_games(6, seed=7)))
    names = ["blocks.0.hook_resid_pre", "blocks.2.hook_resid_mid", "blocks.4.hook_resid_post", "blocks.1.mlp.hook_post", "blocks.3.mlp.hook_pre"]
    ours = handle.activations(tokens, names)
    with torch.inference_mode():
        _, cache = handle.model.run_with_cache(tokens, names_filter=lambda n: n in names)
        exact = float64_copy(handle.model)
        _, truth = exact.run_with_cache(tokens, names_filter=lambda n: n in names)
    for name in names:
        assert ours[name].shape == cache[name].shape
        torch.testing.assert_close(ours[name], cache[name], atol=1e-4, rtol=1e-5)
        effect = one_rounding_effect(exact, lambda model: model.run_with_cache(tokens, names_filter=name)[1][name])
        assert_as_exact(name, ours[name], cache[name], truth[name], effect, longest_sum(handle.cfg, tokens.shape[1]))
    pattern = handle.activations(tokens, ["blocks.1.attn.hook_pattern"])["blocks.1.attn.hook_pattern"]
    torch.testing.assert_close(pattern, handle.model.run_with_cache(tokens, names_filter="blocks.1.attn.hook_pattern")[1]["blocks.1.attn.hook_pattern"], atol=0, rtol=0)
    assert handle.activations(tokens[:0], names)[names[0]].shape == (0, tokens.shape[1], handle.cfg.d_model)
