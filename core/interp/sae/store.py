"""Sparse autoencoders on disk: SAELens's format plus our ``card.json``.

Bundled SAEs live in ``assets/saes/<model>/<name>/`` (``cfg.json`` + ``sae_weights.safetensors``,
readable by ``sae_lens.SAE.load_from_disk``; ``card.json`` with the training config and metrics).
Safetensors and JSON only, so opening a folder never runs code; a damaged folder raises
``SAELoadError`` with the reason instead of crashing the page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from core.checksums import mismatch, sha256_of

SAE_ROOT = Path(__file__).resolve().parents[3] / "assets" / "saes"


class SAELoadError(ValueError):
    """A folder that is not a readable SAE for the model at hand."""


@dataclass(frozen=True)
class SAEEntry:
    name: str
    folder: Path
    hook: str
    card: dict


def save_sae(sae, folder: str | Path, card: dict) -> Path:
    """Write an SAE in SAELens's format, with the hook in its metadata, and our card."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if card.get("hook"):
        sae.cfg.metadata.hook_name = card["hook"]
        sae.cfg.metadata.model_name = card.get("model")
    sae.save_model(str(folder))
    card = {**card, "sha256": {name: sha256_of(folder / name) for name in ("cfg.json", "sae_weights.safetensors")}}
    (folder / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    return folder


def read_card(folder: str | Path) -> dict:
    path = Path(folder) / "card.json"
    try:
        card = json.loads(path.read_text())
    except FileNotFoundError:
        raise SAELoadError(f"{path} is missing") from None
    except (OSError, ValueError) as exc:
        raise SAELoadError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(card, dict) or not isinstance(card.get("hook"), str):
        raise SAELoadError(f"{path} does not name the SAE's hook")
    return card


def list_saes(model: str, root: Path = SAE_ROOT) -> list[SAEEntry]:
    """Bundled SAEs of a model, by name; folders without a readable card are skipped."""
    out = []
    for folder in sorted((root / model).glob("*/")):
        try:
            card = read_card(folder)
        except SAELoadError:
            continue
        out.append(SAEEntry(folder.name, folder, card["hook"], card))
    return out


def load_sae(folder: str | Path, d_in: int | None = None):
    """An inference SAE via SAELens's own loader; ``SAELoadError`` if the files are unusable or
    its width does not fit ``d_in``."""
    from sae_lens import SAE

    folder = Path(folder)
    for name in ("cfg.json", "sae_weights.safetensors"):
        if not (folder / name).is_file():
            raise SAELoadError(f"{folder / name} is missing")
    hashes = read_card(folder).get("sha256") if (folder / "card.json").is_file() else None
    for name in ("cfg.json", "sae_weights.safetensors"):
        problem = mismatch(folder / name, hashes.get(name), "card.json") if isinstance(hashes, dict) else None
        if problem:
            raise SAELoadError(problem)
    try:
        sae = SAE.load_from_disk(str(folder), device="cpu")
    except Exception as exc:  # noqa: BLE001 - a damaged file can fail in json, safetensors or torch
        raise SAELoadError(f"{folder} could not be read as an SAE: {type(exc).__name__}: {exc}") from None
    if d_in is not None and sae.cfg.d_in != d_in:
        raise SAELoadError(f"{folder} expects activations of width {sae.cfg.d_in}, the hook has {d_in}")
    sae.eval()
    for p in sae.parameters():
        p.requires_grad_(False)
    return sae
