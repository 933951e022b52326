"""A damaged or unknown bundle folder is left out of the model list with its reason; the rest stays."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.models import registry
from core.models.errors import ModelLoadError

ASSETS = Path(registry.ASSETS)


@pytest.mark.parametrize(
    "config_patch,card_patch,reason",
    [
        ({}, {"eval": 5}, None),
        ({}, {"parameters": "many"}, None),
        ({"board_size": None}, {}, "board_size must be an integer"),
        ({"board_size": "abc"}, {}, "board_size must be an integer"),
        ({"board_size": 7}, {}, "even number"),
        ({"game": "go"}, {}, "unknown game"),
        ({"game": "chess", "tokenizer": "morse"}, {}, "unknown chess tokenizer"),
    ],
)
def test_damaged_cards_and_configs_never_break_the_list(tmp_path, config_patch, card_patch, reason):
    good = tmp_path / "othello6"
    shutil.copytree(ASSETS / "othello6", good, ignore=shutil.ignore_patterns("*.safetensors"))
    bad = tmp_path / "spare"
    shutil.copytree(ASSETS / "othello6", bad, ignore=shutil.ignore_patterns("*.safetensors"))
    config = {**json.loads((bad / "config.json").read_text()), **config_patch}
    card = {**json.loads((bad / "card.json").read_text()), **card_patch}
    (bad / "config.json").write_text(json.dumps(config))
    (bad / "card.json").write_text(json.dumps(card))
    specs = registry._bundled_specs(tmp_path)
    assert "othello6" in specs
    broken = registry.broken_bundles(tmp_path)
    if reason is None:  # a damaged card only loses its note
        assert "spare" in specs and "spare" not in broken
        if "eval" in card_patch:
            assert "not evaluated" in specs["spare"].description
        else:
            assert "M parameters" not in specs["spare"].description
    else:
        assert "spare" not in specs and reason in broken["spare"] and "config.json" in broken["spare"]
        with pytest.raises(ModelLoadError, match=reason):
            registry._bundled_spec(bad)
