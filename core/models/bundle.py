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


def load_bundle(folder: str | Path, device: str = "cpu"):
    """Read a bundle folder into ``(HookedTransformer in eval mode, config dict, card dict)``."""
    folder = Path(folder)
    config = read_json(folder / CONFIG)
    card = read_json(folder / CARD) if (folder / CARD).exists() else {}
    if "tl_config" not in config:
        raise ModelLoadError(f"{folder / CONFIG}: no 'tl_config' entry")
    try:
        model = build_hooked_transformer(config["tl_config"], device=device)
    except (TypeError, ValueError, AssertionError) as exc:
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
