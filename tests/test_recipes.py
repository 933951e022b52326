"""The published-scale recipes: every setting is a real trainer setting, and a recipe trains."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from core.train.__main__ import main, read_recipe
from core.train.next_move import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "recipes").glob("*.json"))


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_is_a_training_config_of_the_published_shape(path):
    cfg = TrainConfig(**read_recipe(str(path)))
    assert (cfg.n_layers, cfg.d_model, cfg.d_mlp) == (8, 512, 2048)
    assert cfg.batch_size % 8 == 0, "the global batch must split over 8 GPUs"
    gpt = cfg.gpt_config()
    assert gpt.d_model % gpt.n_heads == 0
    assert path.name in (ROOT / "docs" / "models.md").read_text()


def test_bad_recipe_files_get_one_line_errors(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    for text, message in (("{", "Expecting"), ("[1]", "expected a JSON object"), ('{"d_modle": 3}', "unknown settings d_modle")):
        bad.write_text(text)
        with pytest.raises(SystemExit) as exit_:  # the command line's own entry point, in this process
            main(["next-move", str(tmp_path / "run"), "--config", str(bad)])
        code = exit_.value.code
        shown = (code if isinstance(code, str) else "") + capsys.readouterr().err  # Python prints a text exit code to stderr (status 1)
        assert code not in (0, None) and message in shown and "Traceback" not in shown and len(shown.strip().splitlines()) == 1


def test_flags_win_over_a_recipe_and_a_small_version_trains(tmp_path):
    recipe = json.loads((ROOT / "recipes" / "othello_8x512.json").read_text())
    small = {**recipe, "n_layers": 1, "d_model": 32, "n_heads": 4, "d_mlp": 64, "batch_size": 16, "steps": 4, "eval_every": 4, "eval_games": 20, "workers": 0, "compile": False}
    path = tmp_path / "small.json"
    path.write_text(json.dumps(small))
    proc = subprocess.run(
        [sys.executable, "-m", "core.train", "next-move", str(tmp_path / "run"), "--config", str(path), "--steps", "3", "--device", "cpu"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "step 0/3" in proc.stdout and "on cpu" in proc.stdout
    assert {f.name for f in fields(TrainConfig)} >= set(read_recipe(str(path)))
