"""The published 6x6 nanoGPT format: offline hub-cache loading and exact conversion."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from core.games.othello import engine as othello
from core.models import registry
from core.models.errors import ModelLoadError
from core.models.nanogpt import NANOGPT_OTHELLO6_REPO, load_nanogpt_checkpoint, load_published_othello6
from tests.nanogpt_reference import NanoGPT
from tests.rounding import pair_bound

COMMIT = "fedcba9876543210fedcba9876543210fedcba98"


def write_nanogpt_hub_cache(cache: Path, model: NanoGPT, with_config: bool = True) -> Path:
    """``model.save_pretrained`` output laid out as huggingface_hub's cache for the published repo."""
    repo_dir = cache / ("models--" + NANOGPT_OTHELLO6_REPO.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / COMMIT
    model.save_pretrained(snapshot)
    if not with_config:
        (snapshot / "config.json").unlink()
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(COMMIT)
    return snapshot


def our_tokens(n: int, seed: int = 0) -> torch.Tensor:
    games = othello.random_games(n, 6, seed)[:, : othello.context_length(6)]
    return torch.from_numpy(othello.squares_to_tokens(games, 6).astype(np.int64))


@pytest.mark.parametrize("bias", [True, False])
def test_converted_logits_equal_nanogpt_on_random_games(tmp_path, bias):
    """The converted model's move logits equal nanoGPT's within their float32 rounding
    (``tests.rounding.pair_bound``, the pad column left out); probabilities move by at most
    twice the logits' change through the softmax."""
    torch.manual_seed(0)
    reference = NanoGPT(vocab_size=32, block_size=31, n_layer=2, n_head=4, n_embd=64, bias=bias).eval()
    write_nanogpt_hub_cache(tmp_path, reference)
    model, config = load_published_othello6(cache_dir=tmp_path)
    assert config["d_vocab"] == 33 and config["n_ctx"] == 31 and config["board_size"] == 6
    tokens = our_tokens(64)  # full games: every position of 64 random games
    with torch.no_grad():
        ours = model(tokens)
        theirs = reference(tokens - 1)  # nanoGPT has no pad token: its token i is our i + 1
    # float32 rounding of the move logits (tests/rounding.py); the pad token's logit is a large
    # negative constant that nanoGPT does not have, so its column is left out of the bound too.
    diff, bound = (ours[..., 1:] - theirs).abs().max().item(), pair_bound(model, lambda m: m(tokens)[..., 1:], tokens.shape[-1])
    assert diff <= bound, (diff, bound)
    # the pad token is never predicted, so the move distributions are the same (a probability moves
    # by at most its logits' change, twice over through the softmax's sum)
    torch.testing.assert_close(ours.softmax(-1)[..., 1:], theirs.softmax(-1), atol=2 * bound, rtol=0)
    assert ours.softmax(-1)[..., 0].max().item() == 0.0


def test_head_count_from_known_repo_when_config_is_missing(tmp_path):
    torch.manual_seed(1)
    reference = NanoGPT(vocab_size=32, block_size=31, n_layer=1, n_head=4, n_embd=32).eval()
    write_nanogpt_hub_cache(tmp_path, reference, with_config=False)
    model, config = load_published_othello6(cache_dir=tmp_path)
    assert config["n_heads"] == 4
    tokens = our_tokens(4)
    with torch.no_grad():
        assert (model(tokens)[..., 1:] - reference(tokens - 1)).abs().max().item() <= pair_bound(model, lambda m: m(tokens)[..., 1:], tokens.shape[-1])


def test_bad_nanogpt_files_are_named(tmp_path):
    reference = NanoGPT(vocab_size=32, block_size=31, n_layer=1, n_head=4, n_embd=32)
    snapshot = write_nanogpt_hub_cache(tmp_path / "a", reference)
    (snapshot / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(ModelLoadError, match="model.safetensors: not a readable safetensors file"):
        load_nanogpt_checkpoint(snapshot)
    snapshot = write_nanogpt_hub_cache(tmp_path / "b", NanoGPT(vocab_size=30, block_size=31, n_layer=1, n_head=4, n_embd=32))
    with pytest.raises(ModelLoadError, match="vocab size 30"):
        load_nanogpt_checkpoint(snapshot)
    shutil.rmtree(tmp_path / "a")
    with pytest.raises(ModelLoadError, match="network access"):
        load_published_othello6(cache_dir=tmp_path / "empty")


def test_registry_lists_the_published_6x6_model_and_loads_it_from_cache(tmp_path):
    spec = next(s for s in registry.list_models() if s.name == "othello-gpt-6x6-nanogpt")
    assert spec.board_size == 6 and spec.needs_network
    with pytest.raises(ModelLoadError, match="network access"):
        registry.load_model(spec.name, cache_dir=tmp_path)
    torch.manual_seed(2)
    write_nanogpt_hub_cache(tmp_path, NanoGPT(vocab_size=32, block_size=31, n_layer=1, n_head=4, n_embd=32))
    handle = registry.load_model(spec.name, cache_dir=tmp_path)
    assert handle.board_size == 6 and handle.cfg.d_vocab == 33
