"""Put published models into the Hugging Face hub cache, and check what the cache holds.

    python -m core.models.fetch othello-gpt-synthetic chess-gpt-karvonen   # download (network) + verify
    python -m core.models.fetch --check [NAME ...]                          # verify only (offline)

A host with network at build time (a Docker image: ``--build-arg HUB_MODELS="…"``) runs this once,
so visitors of a demo get the published models, not only the bundled ones, with no network at
run time. Verification, per file: present in the cache; for a file the hub cache keeps as a blob
(``snapshots/<commit>/<file>`` links to ``blobs/<hash>``), its content hashes to the blob's name
(sha256 for large files, git's blob sha1 for small ones); then the model loads through its own
loader (which checks shapes and formats). Exit status 1 if any model is missing a file or has a
damaged one, each named.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

from core.models.errors import ModelLoadError
from core.models.hub_files import HUB_FILES, cached_path


def damage(path: Path) -> str | None:
    """Why a cached file does not match the blob it links to (None when it matches, or when the
    cache keeps it as a plain file with no hash to compare)."""
    target = Path(os.path.realpath(path))
    if target.parent.name != "blobs":
        return None
    expected = target.name
    if len(expected) == 64:
        digest = hashlib.sha256()
    elif len(expected) == 40:
        digest = hashlib.sha1(f"blob {target.stat().st_size}\0".encode())  # git's blob id
    else:
        return None
    with open(target, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        return f"{path.name}: damaged (its content hashes to {digest.hexdigest()[:12]}…, the hub's id is {expected[:12]}…)"
    return None


def verify(name: str, cache_dir: str | Path | None = None) -> list[str]:
    """Problems with hub model ``name`` in the cache (empty: present, undamaged, and it loads)."""
    from core.models.registry import load_model

    problems = []
    for f in HUB_FILES[name]:
        paths = [p for p in (cached_path(f.repo, n, cache_dir) for n in f.names) if p is not None]
        if not paths:
            if f.required:
                problems.append(f"{f.repo}/{' or '.join(f.names)}: missing from the cache")
            continue
        problems += [why for why in (damage(p) for p in paths) if why]
    if problems:
        return problems
    try:
        load_model(name, cache_dir=cache_dir)
    except ModelLoadError as exc:
        return [f"does not load: {exc}"]
    return []


def download(name: str, cache_dir: str | Path | None = None) -> list[str]:
    """Fetch the files of hub model ``name`` that the cache lacks (network); problems as text."""
    from huggingface_hub import hf_hub_download

    problems = []
    for f in HUB_FILES[name]:
        if any(cached_path(f.repo, n, cache_dir) for n in f.names):
            continue
        errors = []
        for n in f.names:
            try:
                hf_hub_download(repo_id=f.repo, filename=n, cache_dir=cache_dir)
                break
            except Exception as exc:  # noqa: BLE001 - offline, missing entry, HTTP error: all reported
                errors.append(f"{n}: {type(exc).__name__}: {str(exc)[:200]}")
        else:
            if f.required:
                problems.append(f"{f.repo}: could not download ({'; '.join(errors)})")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.models.fetch", description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", help=f"hub models (default with --check: all): {', '.join(HUB_FILES)}")
    parser.add_argument("--check", action="store_true", help="verify the cache only; download nothing")
    parser.add_argument("--cache-dir", default=None, help="the hub cache (default: huggingface_hub's, from HF_HOME / HF_HUB_CACHE)")
    args = parser.parse_args(argv)
    names = args.models or (list(HUB_FILES) if args.check else [])
    if not names:
        parser.error("name the hub models to fetch")
    unknown = [n for n in names if n not in HUB_FILES]
    if unknown:
        parser.error(f"unknown hub model(s) {', '.join(unknown)}; known: {', '.join(HUB_FILES)}")
    failed = 0
    for name in names:
        problems = ([] if args.check else download(name, args.cache_dir)) or verify(name, args.cache_dir)
        failed += bool(problems)
        print(f"{name}: " + ("ok (in the cache, verified, loads)" if not problems else "; ".join(problems)), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
