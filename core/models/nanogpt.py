"""nanoGPT checkpoints (Karpathy's ``model.py``) as TransformerLens ``HookedTransformer``s.

The published 6x6 Othello-GPT (hub repo ``awonga/othello-gpt``) is a nanoGPT ``GPT`` saved with
huggingface_hub's ``PyTorchModelHubMixin``: ``model.safetensors`` (+ an optional ``config.json``).
Two differences from BoardLens's layout matter:

* nanoGPT has no pad token: token ``i`` is the ``i``-th playable square, i.e. our token ``i + 1``.
  The converted model uses our layout (``d_vocab = size² − 3``): token 0 gets a zero embedding and
  an unembedding column of zeros with bias ``PAD_LOGIT``, so the next-move distribution over
  squares is exactly the nanoGPT one and the pad token is never predicted.
* ``lm_head`` is tied to ``wte`` and has no bias; LayerNorms and linears may lack biases
  (``bias=False``), in which case the converted biases are zero.
"""

from __future__ import annotations

import json
import io
import pickle
from pathlib import Path

import torch

from core.models.bundle import load_weights
from core.models.convert import build_hooked_transformer
from core.models.errors import ModelLoadError

NANOGPT_OTHELLO6_REPO = "awonga/othello-gpt"
PAD_LOGIT = -1e4  # softmax weight exp(-1e4) == 0 in float32: the pad token is never predicted

# Head counts cannot be read off weight shapes; published repos whose config.json lacks them.
KNOWN_HEADS = {"awonga/othello-gpt": 4, "awonga/othello-gpt-30l": 2, "awonga/othello-gpt-7M": 8}


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.exists():
        raise ModelLoadError(f"{path}: file is missing")
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}: not a readable safetensors file ({exc})") from exc


def _strip_compile_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.removeprefix("_orig_mod."): v for k, v in state.items()}


def nanogpt_config(state: dict[str, torch.Tensor], n_heads: int | None, source: str) -> dict:
    """nanoGPT hyper-parameters from the weights; ``n_heads`` must come from elsewhere."""
    wte = state.get("transformer.wte.weight", state.get("lm_head.weight"))
    if wte is None or "transformer.wpe.weight" not in state:
        raise ModelLoadError(f"{source}: no transformer.wte / transformer.wpe weights; not a nanoGPT checkpoint")
    n_layer = 1 + max((int(k.split(".")[2]) for k in state if k.startswith("transformer.h.")), default=-1)
    if n_layer == 0:
        raise ModelLoadError(f"{source}: no transformer.h.* blocks found")
    if not n_heads:
        raise ModelLoadError(f"{source}: the number of attention heads is unknown (pass n_heads)")
    vocab_size, n_embd = wte.shape
    if n_embd % n_heads:
        raise ModelLoadError(f"{source}: n_embd {n_embd} is not divisible by n_head {n_heads}")
    return {
        "n_layer": n_layer,
        "n_head": n_heads,
        "n_embd": n_embd,
        "vocab_size": vocab_size,
        "block_size": state["transformer.wpe.weight"].shape[0],
        "bias": "transformer.ln_f.bias" in state,
    }


def board_size_for_vocab(vocab_size: int) -> int:
    """nanoGPT Othello vocab is size² − 4 squares."""
    size = round((vocab_size + 4) ** 0.5)
    if size * size - 4 != vocab_size:
        raise ModelLoadError(f"vocab size {vocab_size} is not size*size - 4 for any board size")
    return size


def nanogpt_to_tl_state_dict(state: dict[str, torch.Tensor], cfg: dict, add_pad: bool = True) -> tuple[dict[str, torch.Tensor], dict]:
    """Map nanoGPT weights to HookedTransformer names -> ``(state, tl_config)``; ``add_pad`` puts
    BoardLens's Othello pad token in front of the vocabulary (token ids shift by one)."""
    state = _strip_compile_prefix(state)
    d, h, n_layer = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
    dh = d // h
    wte = state.get("transformer.wte.weight", state.get("lm_head.weight"))
    lm_head = state.get("lm_head.weight", wte)  # tied weights may be saved under one name only
    zeros = torch.zeros(d)

    def get(key: str, default: torch.Tensor | None = None) -> torch.Tensor:
        if key in state:
            return state[key]
        if default is not None and not cfg["bias"]:
            return default
        raise ModelLoadError(f"nanoGPT checkpoint has no {key!r}")

    if add_pad:
        w_e = torch.cat([torch.zeros(1, d), wte], dim=0)
        w_u = torch.cat([torch.zeros(d, 1), lm_head.T], dim=1)
        b_u = torch.zeros(w_u.shape[1])
        b_u[0] = PAD_LOGIT
    else:
        w_e, w_u, b_u = wte, lm_head.T, torch.zeros(lm_head.shape[0])
    out = {
        "embed.W_E": w_e,
        "pos_embed.W_pos": state["transformer.wpe.weight"],
        "ln_final.w": get("transformer.ln_f.weight"),
        "ln_final.b": get("transformer.ln_f.bias", zeros),
        "unembed.W_U": w_u,
        "unembed.b_U": b_u,
    }
    d_mlp = None
    for i in range(n_layer):
        p, q = f"transformer.h.{i}.", f"blocks.{i}."
        w_qkv = get(p + "attn.c_attn.weight")  # (3d, d): rows are q|k|v, each heads-major
        b_qkv = get(p + "attn.c_attn.bias", torch.zeros(3 * d))
        w_q, w_k, w_v = w_qkv.view(3, h, dh, d).transpose(2, 3)
        b_q, b_k, b_v = b_qkv.view(3, h, dh)
        w_in = get(p + "mlp.c_fc.weight")
        d_mlp = w_in.shape[0]
        out.update(
            {
                q + "ln1.w": get(p + "ln_1.weight"),
                q + "ln1.b": get(p + "ln_1.bias", zeros),
                q + "ln2.w": get(p + "ln_2.weight"),
                q + "ln2.b": get(p + "ln_2.bias", zeros),
                q + "attn.W_Q": w_q,
                q + "attn.W_K": w_k,
                q + "attn.W_V": w_v,
                q + "attn.b_Q": b_q,
                q + "attn.b_K": b_k,
                q + "attn.b_V": b_v,
                q + "attn.W_O": get(p + "attn.c_proj.weight").T.reshape(h, dh, d),
                q + "attn.b_O": get(p + "attn.c_proj.bias", zeros),
                q + "mlp.W_in": w_in.T,
                q + "mlp.b_in": get(p + "mlp.c_fc.bias", torch.zeros(d_mlp)),
                q + "mlp.W_out": get(p + "mlp.c_proj.weight").T,
                q + "mlp.b_out": get(p + "mlp.c_proj.bias", zeros),
            }
        )
    tl_config = {
        "n_layers": n_layer,
        "d_model": d,
        "d_head": dh,
        "n_heads": h,
        "d_mlp": d_mlp,
        "d_vocab": cfg["vocab_size"] + (1 if add_pad else 0),
        "n_ctx": cfg["block_size"],
        "act_fn": "gelu",
        "normalization_type": "LN",
        "eps": 1e-5,
        "original_architecture": "nanogpt",
    }
    return {k: v.float().contiguous() for k, v in out.items()}, tl_config


def load_nanogpt_checkpoint(folder: Path, n_heads: int | None = None, device: str = "cpu"):
    """A ``PyTorchModelHubMixin`` folder (``model.safetensors`` [+ ``config.json``]) -> ``(model, tl_config)``.

    The head count comes from ``config.json`` when it has ``n_head``, else from ``n_heads``.
    """
    folder = Path(folder)
    weights = folder / "model.safetensors"
    state = _strip_compile_prefix(read_safetensors(weights))
    config_path = folder / "config.json"
    if config_path.exists():
        try:
            saved = json.loads(config_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelLoadError(f"{config_path}: not valid JSON ({exc})") from exc
        saved = saved.get("config", saved) if isinstance(saved, dict) else {}
        n_heads = saved.get("n_head") or n_heads
    cfg = nanogpt_config(state, n_heads, str(weights))
    tl_state, tl_config = nanogpt_to_tl_state_dict(state, cfg)
    tl_config["board_size"] = board_size_for_vocab(cfg["vocab_size"])
    model = build_hooked_transformer({k: v for k, v in tl_config.items() if k != "board_size"}, device=device, init_weights=False)  # every parameter is loaded below
    load_weights(model, tl_state, str(weights))
    model.eval()
    return model, tl_config


def load_published_othello6(repo_id: str = NANOGPT_OTHELLO6_REPO, cache_dir: str | Path | None = None, device: str = "cpu"):
    """The published 6x6 nanoGPT Othello model from the hub cache -> ``(model, tl_config)``."""
    from core.models.hub import hub_file

    weights = hub_file(repo_id, "model.safetensors", cache_dir)
    try:
        hub_file(repo_id, "config.json", cache_dir)  # optional: older uploads have none
    except ModelLoadError:
        pass
    return load_nanogpt_checkpoint(weights.parent, n_heads=KNOWN_HEADS.get(repo_id), device=device)


# -- Karvonen's ChessGPT (character-level PGN) ---------------------------------------------------

CHESS_GPT_REPO = "adamkarvonen/chess_llms"
CHESS_GPT_FILE = "lichess_8layers_ckpt_no_optimizer.pt"
CHESS_GPT_META = "meta.pkl"


class _PlainUnpickler(pickle.Unpickler):
    """Reads pickles of plain dicts, strings and numbers; any class or function is refused, so
    nothing in the file can run (``meta.pkl`` is such a plain dict)."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"refused to load {module}.{name}: only plain data is read")


def read_meta(path: Path) -> tuple[str, ...]:
    """The character list (index = token id) of a nanoGPT ``meta.pkl``, read without executing it."""
    if not path.exists():
        raise ModelLoadError(f"{path}: file is missing")
    if path.stat().st_size > 1_000_000:
        raise ModelLoadError(f"{path}: {path.stat().st_size} bytes is far too large for a character vocabulary")
    try:
        # From memory, not the file: a length field claiming 2**56 bytes then reads what is there
        # (and fails as truncated) instead of asking for that much memory.
        meta = _PlainUnpickler(io.BytesIO(path.read_bytes())).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, RecursionError, OverflowError, MemoryError, AttributeError) as exc:
        raise ModelLoadError(f"{path}: not a plain vocabulary pickle ({type(exc).__name__}: {str(exc)[:200]})") from exc
    itos = meta.get("itos") if isinstance(meta, dict) else None
    if not isinstance(itos, dict) or not all(isinstance(k, int) and isinstance(v, str) and len(v) == 1 for k, v in itos.items()):
        raise ModelLoadError(f"{path}: expected a dict with 'itos' mapping token ids to characters")
    if sorted(itos) != list(range(len(itos))):
        raise ModelLoadError(f"{path}: token ids are not 0..{len(itos) - 1}")
    return tuple(itos[i] for i in range(len(itos)))


def read_nanogpt_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """A nanoGPT ``ckpt.pt`` (``{"model": state dict, "model_args": {...}, ...}``), tensors and
    plain values only (``torch.load(weights_only=True)``) -> ``(state dict, model_args)``."""
    from core.models.hub import read_torch_state_dict

    if not path.exists():
        raise ModelLoadError(f"{path}: file is missing")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix: name it
        raise ModelLoadError(f"{path}: not a readable nanoGPT checkpoint ({type(exc).__name__}: {str(exc)[:200]})") from exc
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        return read_torch_state_dict(path), {}
    state = ckpt["model"]
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"{path}: 'model' is not a dict of tensors")
    args = ckpt.get("model_args") if isinstance(ckpt.get("model_args"), dict) else {}
    return _strip_compile_prefix(state), args


def load_nanogpt_chess(checkpoint: Path, meta: Path, device: str = "cpu"):
    """Karvonen's ChessGPT files -> ``(HookedTransformer, tl_config, vocab)`` (no pad token)."""
    vocab = read_meta(meta)
    state, args = read_nanogpt_checkpoint(checkpoint)
    n_heads = args.get("n_head") if isinstance(args.get("n_head"), int) else None
    cfg = nanogpt_config(state, n_heads or 8, str(checkpoint))
    if cfg["vocab_size"] != len(vocab):
        raise ModelLoadError(f"{checkpoint}: vocabulary of {cfg['vocab_size']} tokens, {meta} lists {len(vocab)}")
    tl_state, tl_config = nanogpt_to_tl_state_dict(state, cfg, add_pad=False)
    model = build_hooked_transformer(tl_config, device=device, init_weights=False)  # every parameter is loaded below
    load_weights(model, tl_state, str(checkpoint))
    model.eval()
    return model, tl_config, vocab


def load_published_chess_gpt(cache_dir: str | Path | None = None, device: str = "cpu"):
    """Karvonen's 8-layer ChessGPT from the hub cache -> ``(model, tl_config, vocab)``."""
    from core.models.hub import hub_file

    meta = hub_file(CHESS_GPT_REPO, CHESS_GPT_META, cache_dir)
    checkpoint = hub_file(CHESS_GPT_REPO, CHESS_GPT_FILE, cache_dir)
    return load_nanogpt_chess(checkpoint, meta, device)
