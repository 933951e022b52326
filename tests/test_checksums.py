"""Every weight file and checkpoint BoardLens writes carries its sha256; a flipped bit is refused
with the file's name (and files from before hashes were kept still load)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.interp.probes import linear_probes as P
from core.interp.sae.store import SAELoadError, load_sae, save_sae
from core.models import registry
from core.models.bundle import CONFIG, WEIGHTS
from core.models.errors import ModelLoadError
from core.train.next_move import CHECKPOINT_RECORD, CheckpointError, TrainConfig, Trainer
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[1]


def flip_a_bit(path: Path, offset: int = -100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_bundled_files_all_carry_a_matching_sha256():
    from core.checksums import mismatch

    bundles = [p for p in (ROOT / "assets" / "models").iterdir() if (p / CONFIG).exists()]
    for folder in bundles:
        expected = json.loads((folder / CONFIG).read_text())["sha256"][WEIGHTS]
        assert mismatch(folder / WEIGHTS, expected, CONFIG) is None, folder
    for meta in (ROOT / "assets" / "probes").glob("*/*/*.json"):
        assert mismatch(meta.with_suffix(".safetensors"), json.loads(meta.read_text())["sha256"], meta.name) is None, meta
    for card in (ROOT / "assets" / "saes").glob("*/*/card.json"):
        for name, digest in json.loads(card.read_text())["sha256"].items():
            assert mismatch(card.parent / name, digest, "card.json") is None, card


def test_a_flipped_bit_in_a_model_is_refused_naming_the_file(tiny_bundle, tmp_path):
    folder = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, folder)
    registry.load_model(str(folder))
    flip_a_bit(folder / WEIGHTS)
    with pytest.raises(ModelLoadError, match=r"model\.safetensors: damaged or replaced file \(sha256"):
        registry.load_model(str(folder))


def test_a_flipped_bit_in_a_probe_or_an_sae_is_refused(tiny_bundle, tmp_path):
    handle = registry.load_model(str(tiny_bundle))
    probes = P.train_probes(handle, "empty", ["blocks.0.hook_resid_post"], train_games=20, test_games=10)
    P.save_probe_set(probes, tmp_path / "probes")
    path = tmp_path / "probes" / "empty" / "blocks.0.hook_resid_post.safetensors"
    P.load_probe(path, handle.cfg.d_model, 6)
    flip_a_bit(path)
    with pytest.raises(P.ProbeLoadError, match="damaged or replaced"):
        P.load_probe(path, handle.cfg.d_model, 6)

    from core.train.sae import make_training_sae, SAETrainConfig

    sae = make_training_sae(SAETrainConfig(d_sae=16, k=4), handle.cfg.d_model)
    save_sae(sae, tmp_path / "sae", {"hook": "blocks.0.hook_resid_post"})
    load_sae(tmp_path / "sae", d_in=handle.cfg.d_model)
    flip_a_bit(tmp_path / "sae" / "sae_weights.safetensors")
    with pytest.raises(SAELoadError, match="sae_weights.safetensors: damaged or replaced"):
        load_sae(tmp_path / "sae", d_in=handle.cfg.d_model)


def test_a_damaged_checkpoint_stops_the_trainer_with_the_file_named(tmp_path):
    run = tmp_path / "run"
    trainer = Trainer(TrainConfig(size=6, seed=1, **{**TINY, "steps": 3}), run)
    trainer.train()
    assert json.loads((run / CHECKPOINT_RECORD).read_text())["step"] == 3
    Trainer(TrainConfig(), run)  # resumes
    flip_a_bit(run / Trainer.CHECKPOINT, offset=-2000)
    with pytest.raises(CheckpointError, match="checkpoint.pt: damaged or replaced"):
        Trainer(TrainConfig(), run)
    out = subprocess.run([sys.executable, "-m", "core.train", "next-move", str(run)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "checkpoint.pt: damaged or replaced" in out.stderr and "Traceback" not in out.stderr
    # not a checkpoint at all, and no record beside it: still a clear error
    (run / CHECKPOINT_RECORD).unlink()
    (run / Trainer.CHECKPOINT).write_bytes(b"not a zip file")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        Trainer(TrainConfig(), run)


def test_a_kill_between_the_two_renames_still_resumes(tmp_path):
    run = tmp_path / "run"
    trainer = Trainer(TrainConfig(size=6, seed=1, **{**TINY, "steps": 2}), run)
    trainer.train()
    good = (run / CHECKPOINT_RECORD).read_text()
    # the new checkpoint is in place, its record still in the temporary file
    (run / (CHECKPOINT_RECORD + ".tmp")).write_text(good)
    (run / CHECKPOINT_RECORD).write_text(json.dumps({"sha256": "0" * 64, "step": 1}))
    assert Trainer(TrainConfig(), run).state.step == 2
