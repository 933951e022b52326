"""The bundled model format: ``config.json`` + ``model.safetensors`` + ``card.json`` in one folder.

``config.json`` holds ``{"game": ..., "board_size": ..., "tl_config": {HookedTransformerConfig
fields}}``; the safetensors file holds the HookedTransformer state dict; ``card.json`` says how the
model was made and what it measured. No pickle anywhere, so a bundle is safe to open.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from core.checksums import mismatch, sha256_of
from core.models.convert import build_hooked_transformer
from core.models.errors import ModelLoadError

CONFIG, WEIGHTS, CARD = "config.json", "model.safetensors", "card.json"


def save_bundle(folder: str | Path, config: dict, state_dict: dict[str, torch.Tensor], card: dict) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (WEIGHTS + ".tmp")
    save_file({k: v.contiguous() for k, v in state_dict.items()}, str(tmp))
    config = {**config, "sha256": {WEIGHTS: sha256_of(tmp)}}
    os.replace(tmp, folder / WEIGHTS)
    (folder / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    (folder / CARD).write_text(json.dumps(card, indent=2) + "\n")
    return folder


def read_json(path: Path) -> dict:
    if not path.exists():
        raise ModelLoadError(f"{path}: file is missing")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path}: expected a JSON object")
    return data


def load_weights(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Copy a state dict into ``model``, naming the file and the first mismatch if it does not fit."""
    expected = model.state_dict()
    ignorable = {k for k in expected if k.endswith((".mask", ".IGNORE"))}  # TL buffers, rebuilt
    missing = sorted(set(expected) - set(state_dict) - ignorable)
    unexpected = sorted(set(state_dict) - set(expected))
    if missing or unexpected:
        raise ModelLoadError(f"{source}: weights do not match the config (missing {missing[:3]}, unexpected {unexpected[:3]})")
    for key, tensor in state_dict.items():
        if not isinstance(tensor, torch.Tensor):
            raise ModelLoadError(f"{source}: entry {key!r} is not a tensor")
        if tensor.shape != expected[key].shape:
            raise ModelLoadError(f"{source}: {key} has shape {tuple(tensor.shape)}, the config needs {tuple(expected[key].shape)}")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state_dict.items()}, strict=False)


# Far above any model BoardLens ships or loads; they keep a damaged or hostile config from
# allocating gigabytes before a single weight is read.
LIMITS = {"n_layers": 128, "d_model": 8192, "n_heads": 256, "d_head": 1024, "d_mlp": 65536, "d_vocab": 300_000, "n_ctx": 16384}
MAX_PARAMETERS = 2_000_000_000


def check_tl_config(tl: object, source: str) -> None:
    """``ModelLoadError`` naming ``source`` unless the sizes are positive integers within ``LIMITS``
    and the model they describe has at most ``MAX_PARAMETERS`` parameters."""
    if not isinstance(tl, dict):
        raise ModelLoadError(f"{source}: 'tl_config' must be an object")
    sizes = {}
    for key, limit in LIMITS.items():
        value = tl.get(key)
        if key == "d_head" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= limit:
            raise ModelLoadError(f"{source}: tl_config.{key} must be a positive integer up to {limit:,}, got {str(value)[:40]!r}")
        sizes[key] = value
    d_head = sizes.get("d_head", sizes["d_model"] // sizes["n_heads"])
    per_layer = 4 * sizes["d_model"] * sizes["n_heads"] * d_head + 2 * sizes["d_model"] * sizes["d_mlp"]
    total = sizes["n_layers"] * per_layer + (2 * sizes["d_vocab"] + sizes["n_ctx"]) * sizes["d_model"]
    if total > MAX_PARAMETERS:
        raise ModelLoadError(f"{source}: tl_config describes {total:,} parameters (more than {MAX_PARAMETERS:,}); refusing to allocate it")


def load_bundle(folder: str | Path, device: str = "cpu"):
    """Read a bundle folder into ``(HookedTransformer in eval mode, config dict, card dict)``."""
    folder = Path(folder)
    config = read_json(folder / CONFIG)
    card = read_json(folder / CARD) if (folder / CARD).exists() else {}
    if "tl_config" not in config:
        raise ModelLoadError(f"{folder / CONFIG}: no 'tl_config' entry")
    check_tl_config(config["tl_config"], str(folder / CONFIG))
    try:
        model = build_hooked_transformer(config["tl_config"], device=device, init_weights=False)  # every parameter is loaded below
    except (TypeError, ValueError, AssertionError, RuntimeError, KeyError, AttributeError) as exc:
        raise ModelLoadError(f"{folder / CONFIG}: invalid model config ({exc})") from exc
    weights = folder / WEIGHTS
    if not weights.exists():
        raise ModelLoadError(f"{weights}: file is missing")
    hashes = config.get("sha256") or {}
    problem = mismatch(weights, hashes.get(WEIGHTS) if isinstance(hashes, dict) else hashes, CONFIG)
    if problem:
        raise ModelLoadError(problem)
    try:
        state_dict = load_file(str(weights), device=device)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelLoadError(f"{weights}: not a readable safetensors file ({exc})") from exc
    load_weights(model, state_dict, str(weights))
    model.eval()
    return model, config, card
