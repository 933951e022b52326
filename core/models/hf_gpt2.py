"""Hugging Face GPT-2 checkpoints (``GPT2LMHeadModel``) as TransformerLens ``HookedTransformer``s,
without ``transformers``: the chess-GPT UCI model ``shtoshni/gpt2-chess-uci`` (12 layers x 768,
77 tokens in the ``uci-squares`` layout).

The weights are read with safetensors (``model.safetensors``) or ``torch.load(weights_only=True)``
(``pytorch_model.bin``) and mapped by TransformerLens's own GPT-2 conversion
(``transformer_lens.pretrained.weight_conversions.convert_gpt2_weights``), which reads attributes
of a ``GPT2LMHeadModel``: a tree of plain objects over the state dict stands in for it. The token
layout comes from the checkpoint's ``tokenizer.json`` (a WordLevel vocabulary) when present and is
checked against the published one.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import torch

from core.models.bundle import load_weights, read_json
from core.models.convert import build_hooked_transformer
from core.models.errors import ModelLoadError

CHESS_GPT2_REPO = "shtoshni/gpt2-chess-uci"
# Karvonen's ChessGPT (8 x 512, PGN characters) copied into a GPT2LMHeadModel: the model
# Karvonen et al.'s board-game SAEs were trained on.
CHESS_GPT2_PGN_REPO = "adamkarvonen/8LayerChessGPT2"
NANOGPT_ACTIVATION = "gelu"  # nanoGPT's MLP: nn.GELU(), the exact (erf) GELU
MAX_LAYERS, MAX_WIDTH, MAX_CTX, MAX_VOCAB = 96, 8192, 8192, 300_000  # far above any published model


def _int_field(cfg: dict, key: str, source: str, default: int | None = None, limit: int = 1 << 20) -> int:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= limit:
        raise ModelLoadError(f"{source}: {key} must be a positive integer up to {limit}, got {value!r}")
    return value


def tl_config_from_hf(cfg: dict, source: str) -> dict:
    """HookedTransformerConfig fields of a GPT-2 ``config.json`` (checked before anything is built)."""
    if not isinstance(cfg, dict):
        raise ModelLoadError(f"{source}: expected a JSON object")
    d_model = _int_field(cfg, "n_embd", source, limit=MAX_WIDTH)
    n_heads = _int_field(cfg, "n_head", source, limit=256)
    if d_model % n_heads:
        raise ModelLoadError(f"{source}: n_embd {d_model} is not divisible by n_head {n_heads}")
    act = cfg.get("activation_function", "gelu_new")
    if act not in ("gelu_new", "gelu", "relu"):
        raise ModelLoadError(f"{source}: activation_function {act!r} is not supported")
    inner = cfg.get("n_inner")
    return {
        "n_layers": _int_field(cfg, "n_layer", source, limit=MAX_LAYERS),
        "d_model": d_model,
        "d_head": d_model // n_heads,
        "n_heads": n_heads,
        "d_mlp": 4 * d_model if inner is None else _int_field(cfg, "n_inner", source, limit=4 * MAX_WIDTH),
        "d_vocab": _int_field(cfg, "vocab_size", source, limit=MAX_VOCAB),
        "n_ctx": _int_field(cfg, "n_positions", source, default=cfg.get("n_ctx"), limit=MAX_CTX),
        "act_fn": act,
        "normalization_type": "LN",
        "eps": float(cfg.get("layer_norm_epsilon", 1e-5)),
        "original_architecture": "GPT2LMHeadModel",
    }


def _module_tree(state: dict[str, torch.Tensor]):
    """``{"transformer.h.0.ln_1.weight": t, ...}`` -> objects with attributes (lists for numbers)."""
    root: dict = {}
    for key, value in state.items():
        node = root
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def build(node):
        if not isinstance(node, dict):
            return node
        if node and all(k.isdigit() for k in node):
            return [build(node[str(i)]) for i in range(len(node))]
        return SimpleNamespace(**{k: build(v) for k, v in node.items()})

    return build(root)


def read_state_dict(folder: Path) -> tuple[dict[str, torch.Tensor], Path]:
    """``model.safetensors`` or ``pytorch_model.bin`` of a checkpoint folder, never unpickling code."""
    from core.models.hub import read_torch_state_dict
    from core.models.nanogpt import read_safetensors

    if (folder / "model.safetensors").exists():
        return read_safetensors(folder / "model.safetensors"), folder / "model.safetensors"
    return read_torch_state_dict(folder / "pytorch_model.bin"), folder / "pytorch_model.bin"


def gpt2_to_tl_state_dict(state: dict[str, torch.Tensor], tl_config: dict, source: str) -> dict[str, torch.Tensor]:
    """Map a GPT2LMHeadModel (or GPT2Model) state dict with TransformerLens's GPT-2 conversion."""
    state = {k if k.startswith(("transformer.", "lm_head.")) else "transformer." + k: v for k, v in state.items()}
    if "transformer.wte.weight" not in state:
        raise ModelLoadError(f"{source}: no transformer.wte.weight; not a GPT-2 checkpoint")
    state.setdefault("lm_head.weight", state["transformer.wte.weight"])  # tied embeddings
    expected = (tl_config["d_vocab"], tl_config["d_model"])
    for key in ("transformer.wte.weight", "lm_head.weight"):
        if tuple(state[key].shape) != expected:
            raise ModelLoadError(f"{source}: {key} has shape {tuple(state[key].shape)}, config.json says {expected}")
    layers = 1 + max((int(k.split(".")[2]) for k in state if k.startswith("transformer.h.")), default=-1)
    if layers != tl_config["n_layers"]:
        raise ModelLoadError(f"{source}: {layers} blocks in the weights, config.json says n_layer {tl_config['n_layers']}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from transformer_lens import HookedTransformerConfig
        from transformer_lens.pretrained.weight_conversions import convert_gpt2_weights

        cfg = HookedTransformerConfig(**tl_config)
    try:
        out = convert_gpt2_weights(_module_tree(state), cfg)
    except (AttributeError, IndexError, RuntimeError, ValueError) as exc:
        raise ModelLoadError(f"{source}: weights do not fit a GPT-2 of this config ({type(exc).__name__}: {exc})") from exc
    out["unembed.b_U"] = torch.zeros(tl_config["d_vocab"])
    return {k: v.float().contiguous() for k, v in out.items()}


def read_vocab(folder: Path) -> tuple[str, ...] | None:
    """The token list (index = id) of a ``tokenizer.json`` WordLevel model or a ``vocab.json``."""
    for name in ("tokenizer.json", "vocab.json"):
        path = folder / name
        if not path.exists():
            continue
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelLoadError(f"{path}: not valid JSON ({exc})") from exc
        vocab = data.get("model", {}).get("vocab") if name == "tokenizer.json" and isinstance(data, dict) else data
        if not isinstance(vocab, dict) or not all(isinstance(i, int) for i in vocab.values()):
            raise ModelLoadError(f"{path}: no token -> id vocabulary")
        ids = sorted(vocab.values())
        if ids != list(range(len(ids))):
            raise ModelLoadError(f"{path}: token ids are not 0..{len(ids) - 1}")
        by_id = {i: t for t, i in vocab.items()}
        return tuple(by_id[i] for i in range(len(ids)))
    return None


def load_hf_gpt2(folder: str | Path, device: str = "cpu"):
    """A GPT-2 checkpoint folder -> ``(HookedTransformer, tl_config, vocab or None)``."""
    folder = Path(folder)
    config_path = folder / "config.json"
    tl_config = tl_config_from_hf(read_json(config_path), str(config_path))
    state, weights = read_state_dict(folder)
    tl_state = gpt2_to_tl_state_dict(state, tl_config, str(weights))
    model = build_hooked_transformer(tl_config, device=device, init_weights=False)  # every parameter is loaded below
    load_weights(model, tl_state, str(weights))
    model.eval()
    return model, tl_config, read_vocab(folder)


def _load_hub_gpt2(repo: str, cache_dir: str | Path | None, device: str):
    from core.models.hub import hub_file

    config = hub_file(repo, "config.json", cache_dir)
    for weights in ("model.safetensors", "pytorch_model.bin"):
        try:
            hub_file(repo, weights, cache_dir)
            break
        except ModelLoadError as exc:
            last = exc
    else:
        raise last
    try:
        hub_file(repo, "tokenizer.json", cache_dir)
    except ModelLoadError:
        pass  # the published layout is used
    return load_hf_gpt2(config.parent, device)


def load_published_chess_gpt2(cache_dir: str | Path | None = None, device: str = "cpu"):
    """The chess-GPT UCI model from the hub cache -> ``(model, tl_config, vocab or None)``."""
    return _load_hub_gpt2(CHESS_GPT2_REPO, cache_dir, device)


def load_published_chess_gpt2_pgn(cache_dir: str | Path | None = None, device: str = "cpu"):
    """Karvonen's ChessGPT in its GPT2LMHeadModel copy -> ``(model, tl_config, vocab or None)``.
    Its MLP uses the ``activation_function`` its ``config.json`` names (``gelu_new`` when it names
    none, as ``transformers`` does): see ``activation_note``."""
    return _load_hub_gpt2(CHESS_GPT2_PGN_REPO, cache_dir, device)


def activation_note(tl_config: dict) -> str:
    """What the model card says about a GPT-2 copy of a nanoGPT model's activation function."""
    act = tl_config.get("act_fn")
    if act == NANOGPT_ACTIVATION:
        return "activation: exact GELU (config.json's activation_function 'gelu'), as in the nanoGPT original"
    return (
        f"activation: {act!r}, as config.json's activation_function says (transformers' default when it names none); "
        "the nanoGPT original uses exact GELU, so this copy's MLPs differ from it slightly (the tanh approximation is within ~1e-3 of GELU per unit). "
        "Karvonen et al.'s SAEs were trained on this copy's activations"
    )
