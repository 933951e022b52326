"""Each transcoder feature's best board property and its F1, as the SAE browser labels SAE
features: one pass over held-out games per layer, the feature fired above a share of its maximum
as a predictor of each property (best threshold), the property with the highest F1 kept. The
Circuits page names feature nodes with them ("theirs e4 · F1 0.91"). Text models have no board:
no labels."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

import numpy as np

from core.models.handle import ModelHandle


def feature_labels(handle: ModelHandle, folder: Path, progress: Callable[[str, float], None] | None = None) -> dict:
    """``{"property_names": [...], "games": n, "layers": [{"layer", "property": [...], "f1": [...]}]}``
    (property -1: the feature never fired on the held-out games)."""
    from core.interp.circuits.replacement import load_transcoders
    from core.interp.sae.features import build_index, index_games

    n = handle.cfg.n_layers
    transcoders = load_transcoders(folder, n)
    out: dict = {"games": index_games(handle.game), "layers": []}
    for layer, tc in transcoders.items():
        if progress:
            progress(f"labelling layer {layer}'s features with board properties", layer / n)
        index = build_index(handle, tc, f"blocks.{layer}.ln2.hook_normalized")
        out["property_names"] = list(index.property_names)
        out["layers"].append({"layer": layer, "property": index.best_property.astype(int).tolist(), "f1": np.round(index.best_f1.astype(float), 3).tolist()})
    return out


def write_labels(handle: ModelHandle, folder: Path, progress=None) -> dict:
    """Label the set in ``folder`` and keep the labels in its ``card.json``."""
    card_path = Path(folder) / "card.json"
    card = json.loads(card_path.read_text())
    card["feature_labels"] = feature_labels(handle, Path(folder), progress)
    card_path.write_text(card_json(card))
    return card


def card_json(card: dict) -> str:
    """The card as indented JSON with each list of numbers on one line (thousands of labels)."""
    text = json.dumps(card, indent=1)
    return re.sub(r"\[\s*(-?[\d.e-]+(?:,\s*-?[\d.e-]+)*)\s*\]", lambda m: "[" + ",".join(x.strip() for x in m.group(1).split(",")) + "]", text)
