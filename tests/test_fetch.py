"""``python -m core.models.fetch`` and the Dockerfile's HUB_MODELS build argument, against a
prepared offline hub cache laid out as huggingface_hub lays it out (blobs named by their hash,
snapshot entries linking to them)."""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.models import fetch, registry
from core.models.hub import OTHELLO_GPT_FILE, OTHELLO_GPT_REPO

ROOT = Path(__file__).resolve().parents[1]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def cache_file(cache: Path, repo: str, filename: str, data: bytes, small: bool = False) -> Path:
    """Store ``data`` as huggingface_hub does: ``blobs/<sha256>`` (git's sha1 for small files) and a
    relative link to it in the snapshot."""
    repo_dir = cache / ("models--" + repo.replace("/", "--"))
    blob_id = hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest() if small else hashlib.sha256(data).hexdigest()
    (repo_dir / "blobs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "blobs" / blob_id).write_bytes(data)
    snapshot = repo_dir / "snapshots" / COMMIT
    snapshot.mkdir(parents=True, exist_ok=True)
    (snapshot / filename).symlink_to(Path("..") / ".." / "blobs" / blob_id)
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(COMMIT)
    return repo_dir / "blobs" / blob_id


@pytest.fixture()
def othello_cache(tmp_path, monkeypatch):
    """The published Othello-GPT's file (a small model in its exact layout) in an offline cache."""
    from tests.test_models import legacy_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    buffer = io.BytesIO()
    torch.save(legacy_model().state_dict(), buffer)
    blob = cache_file(tmp_path, OTHELLO_GPT_REPO, OTHELLO_GPT_FILE, buffer.getvalue())
    return tmp_path, blob


def test_check_verifies_a_prepared_cache_and_the_app_lists_the_model(othello_cache, capsys, monkeypatch):
    cache, _ = othello_cache
    assert fetch.main(["--check", "othello-gpt-synthetic", "--cache-dir", str(cache)]) == 0
    assert "othello-gpt-synthetic: ok" in capsys.readouterr().out
    import huggingface_hub.constants as hub_constants

    assert registry.hub_spec("othello-gpt-synthetic").needs_network  # not in the default cache
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
    spec = registry.hub_spec("othello-gpt-synthetic")
    assert not spec.needs_network and "in the local hub cache" in spec.description
    assert next(s for s in registry.list_models() if s.name == spec.name) == spec


def test_a_damaged_blob_and_missing_files_are_named(othello_cache, capsys):
    cache, blob = othello_cache
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    assert fetch.main(["--check", "othello-gpt-synthetic", "chess-gpt-karvonen", "--cache-dir", str(cache)]) == 1
    out = capsys.readouterr().out
    assert re.search(r"othello-gpt-synthetic: synthetic_model.pth: damaged", out), out
    assert "chess-gpt-karvonen: adamkarvonen/chess_llms/lichess_8layers_ckpt_no_optimizer.pt: missing from the cache" in out


def test_a_small_file_is_checked_against_its_git_blob_id(tmp_path):
    path = cache_file(tmp_path, "someone/model", "config.json", b'{"n_layer": 2}', small=True)
    link = tmp_path / "models--someone--model" / "snapshots" / COMMIT / "config.json"
    assert fetch.damage(link) is None
    path.write_bytes(b'{"n_layer": 3}')
    assert "damaged" in fetch.damage(link)


def test_fetch_without_network_reports_what_it_could_not_download(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert fetch.main(["othello-gpt-synthetic", "--cache-dir", str(tmp_path)]) == 1
    assert "could not download" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        fetch.main(["no-such-model"])


def test_the_dockerfile_build_argument_runs_the_fetch_command(othello_cache):
    """The Dockerfile's own RUN line, run by the shell with HUB_MODELS set, against the prepared
    cache (offline: the files are there, so it only verifies); and with HUB_MODELS empty it does
    nothing."""
    cache, _ = othello_cache
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r'^ARG HUB_MODELS=""$', text, re.M)
    run = next(line[len("RUN ") :] for line in text.splitlines() if line.startswith("RUN ") and "HUB_MODELS" in line)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(["bash", "-c", run.replace("python ", f"{sys.executable} ", 1)], cwd=ROOT, env={**env, "HUB_MODELS": "othello-gpt-synthetic"}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "othello-gpt-synthetic: ok" in done.stdout, done.stdout + done.stderr
    failed = subprocess.run(["bash", "-c", run.replace("python ", f"{sys.executable} ", 1)], cwd=ROOT, env={**env, "HUB_MODELS": "chess-gpt-karvonen"}, capture_output=True, text=True, timeout=300)
    assert failed.returncode == 1 and "could not download" in failed.stdout  # a build would stop here
    nothing = subprocess.run(["bash", "-c", run], cwd=ROOT, env={**env, "HUB_MODELS": ""}, capture_output=True, text=True, timeout=60)
    assert nothing.returncode == 0 and not nothing.stdout
