"""Model loading (bundle, published hub layout offline), clear errors, and hook-safe sharing."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from core.games.othello import engine as othello
from core.models import registry
from core.models.bundle import load_bundle
from core.models.convert import build_hooked_transformer
from core.models.errors import ModelLoadError
from core.models.hub import OTHELLO_GPT_FILE, OTHELLO_GPT_REPO, load_published_othello_gpt
from core.train.next_move import TrainConfig, Trainer
from tests.rounding import forward_bound


def game_tokens(n: int, size: int, seed: int = 0) -> torch.Tensor:
    games = othello.random_games(n, size, seed)[:, : othello.context_length(size)]
    return torch.from_numpy(othello.squares_to_tokens(games, size).astype(np.int64))


def test_bundle_loads_as_eval_hooked_transformer(tiny_bundle):
    from transformer_lens import HookedTransformer

    handle = registry.load_model(str(tiny_bundle))
    assert isinstance(handle.model, HookedTransformer)
    assert not handle.model.training
    assert handle.board_size == 6 and handle.cfg.d_vocab == 33 and handle.cfg.n_ctx == 31
    card = json.loads((tiny_bundle / "card.json").read_text())
    assert 0.0 <= card["eval"]["top1_legal"] <= 1.0 and card["games_seen"] == 20 * 32


def test_a_pass_resumed_from_the_residual_stream_equals_the_hooked_pass(tiny_bundle):
    """A pass resumed from a kept activation equals the hooked pass within the logits' float32
    rounding (``tests.rounding.forward_bound``): the same layers, the resumed one as a batch of
    its own. Halving the stream moves logits by far more than 1e-3."""
    from core.models.handle import resume_layer

    assert [resume_layer(h) for h in ("blocks.0.hook_resid_pre", "blocks.0.hook_resid_post", "blocks.1.hook_resid_post", "blocks.1.mlp.hook_post", "blocks.1.hook_resid_mid", "ln_final.hook_normalized")] == [0, 1, 2, None, None, None]
    handle = registry.load_model(str(tiny_bundle))
    tokens = game_tokens(5, 6, seed=2)
    halve = lambda x: x * 0.5  # noqa: E731 - any change of the stream
    for hook in ("blocks.0.hook_resid_pre", "blocks.0.hook_resid_post", "blocks.1.hook_resid_post"):
        logits, acts = handle.forward_keeping(tokens, hook)
        assert torch.equal(logits, handle.forward(tokens)) and torch.equal(acts, handle.activations(tokens, [hook])[hook])  # one fused pass for all three
        resumed = handle.forward_from(acts, resume_layer(hook), halve)
        hooked = handle.run_with_hooks(tokens, [(hook, lambda act, hook: halve(act))])
        bound = forward_bound(handle.model, tokens)
        assert torch.allclose(resumed, hooked, atol=bound, rtol=0) and not torch.allclose(resumed, logits, atol=1e-3)
        assert torch.allclose(handle.forward_from(acts, resume_layer(hook)), logits, atol=bound, rtol=0)  # no change: the clean output
    assert not handle.model.hook_dict["blocks.0.hook_resid_post"].fwd_hooks  # nothing left attached


# -- the published checkpoint layout, offline -----------------------------------------------


def write_hub_cache(cache: Path, state_dict: dict) -> Path:
    """Lay out ``cache`` exactly as huggingface_hub does after downloading the published file."""
    repo_dir = cache / ("models--" + OTHELLO_GPT_REPO.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo_dir / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    torch.save(state_dict, snapshot / OTHELLO_GPT_FILE)
    return snapshot / OTHELLO_GPT_FILE


def legacy_model():
    """A small model in the published layout: HookedTransformer with LNPre, vocab 61, context 59."""
    torch.manual_seed(0)
    config = dict(n_layers=2, d_model=32, d_head=8, n_heads=4, d_mlp=64, d_vocab=61, n_ctx=59, act_fn="gelu", normalization_type="LNPre")
    model = build_hooked_transformer(config)
    for p in model.parameters():  # give every weight (biases too) a nonzero value
        torch.nn.init.normal_(p, std=0.1)
    return model.eval()


def test_published_checkpoint_loads_offline_from_hub_cache(tmp_path, monkeypatch):
    """The loaded checkpoint's logits equal the original's within their float32 rounding
    (``tests.rounding.forward_bound``)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    original = legacy_model()
    write_hub_cache(tmp_path, original.state_dict())
    model, config = load_published_othello_gpt(cache_dir=tmp_path)
    assert config["normalization_type"] == "LNPre" and config["n_layers"] == 2
    tokens = game_tokens(5, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(tokens), original(tokens), atol=forward_bound(model, tokens), rtol=0)  # float32 rounding (tests/rounding.py)


def test_published_checkpoint_missing_offline_says_network(tmp_path):
    with pytest.raises(ModelLoadError, match="network access"):
        load_published_othello_gpt(cache_dir=tmp_path)


def test_corrupt_and_wrong_shaped_checkpoints_name_the_file(tmp_path):
    path = write_hub_cache(tmp_path, legacy_model().state_dict())
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ModelLoadError, match=f"{OTHELLO_GPT_FILE}.*not a readable PyTorch checkpoint"):
        load_published_othello_gpt(cache_dir=tmp_path)
    state = legacy_model().state_dict()
    state["blocks.1.attn.W_K"] = torch.zeros(4, 32, 7)
    torch.save(state, path)
    with pytest.raises(ModelLoadError, match=r"synthetic_model.pth: blocks.1.attn.W_K has shape \(4, 32, 7\)"):
        load_published_othello_gpt(cache_dir=tmp_path)
    torch.save({"not": "tensors"}, path)
    with pytest.raises(ModelLoadError, match="dict of tensors"):
        load_published_othello_gpt(cache_dir=tmp_path)


def test_hub_model_is_listed_and_fails_clearly_offline(tmp_path):
    spec = next(s for s in registry.list_models() if s.source == "hub")
    assert spec.needs_network and "network" in spec.description
    with pytest.raises(ModelLoadError, match="network access"):
        registry.load_model(spec.name, cache_dir=tmp_path)
    with pytest.raises(ModelLoadError, match="unknown model 'nope'"):
        registry.load_model("nope")


def test_broken_bundles_name_file_and_problem(tiny_bundle, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_bundle, broken)
    (broken / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(ModelLoadError, match="model.safetensors: damaged or replaced file"):  # its sha256 differs
        load_bundle(broken)
    config = json.loads((broken / "config.json").read_text())
    (broken / "config.json").write_text(json.dumps({k: v for k, v in config.items() if k != "sha256"}))
    with pytest.raises(ModelLoadError, match="model.safetensors: not a readable safetensors file"):  # a bundle without hashes
        load_bundle(broken)
    (broken / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="model.safetensors: file is missing"):
        load_bundle(broken)
    shutil.copy(tiny_bundle / "model.safetensors", broken / "model.safetensors")
    config = json.loads((broken / "config.json").read_text())
    config["tl_config"]["d_mlp"] = 128
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match=r"blocks.0.mlp.W_in has shape \(32, 64\), the config needs \(32, 128\)"):
        load_bundle(broken)
    (broken / "config.json").write_text("{ not json")
    with pytest.raises(ModelLoadError, match="config.json: not valid JSON"):
        load_bundle(broken)


def test_exported_logits_equal_trainer_logits(tmp_path):
    """The exported bundle's logits equal the trainer's within their float32 rounding
    (``tests.rounding.forward_bound``)."""
    from core.train.export import export_run

    trainer = Trainer(TrainConfig(size=8, n_layers=2, d_model=32, n_heads=4, d_mlp=64, batch_size=16, steps=5, eval_games=20), tmp_path / "run")
    trainer.train()
    export_run(trainer, tmp_path / "bundle", "t8", "test", eval_games=20)
    model, _, _ = load_bundle(tmp_path / "bundle")
    tokens = game_tokens(8, 8, seed=5)
    trainer.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(tokens), trainer.model(tokens), atol=forward_bound(model, tokens), rtol=0)  # float32 rounding (tests/rounding.py)


# -- one shared model, many threads -----------------------------------------------------------


def test_threads_with_and_without_hooks_match_sequential_runs(tiny_bundle):
    handle = registry.load_model(str(tiny_bundle))
    tokens = [game_tokens(4, 6, seed=s) for s in range(8)]

    def scale_hook(factor):
        def hook(resid, hook):
            return resid * factor

        return [("blocks.0.hook_resid_post", hook)]

    def job(i: int) -> torch.Tensor:
        if i % 2:
            return handle.run_with_hooks(tokens[i], scale_hook(0.5 + i))
        return handle.forward(tokens[i])

    expected = [job(i) for i in range(8)]
    results: dict[int, torch.Tensor] = {}

    def worker(i: int) -> None:
        for _ in range(10):
            results[i] = job(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(8):
        assert torch.equal(results[i], expected[i]), f"thread {i} differs"
    # The hooked results really differ from plain ones (the test can fail), and no hook is left.
    assert not torch.equal(handle.forward(tokens[1]), expected[1])
    assert all(len(hp._forward_hooks) == 0 for hp in handle.model.hook_dict.values())
