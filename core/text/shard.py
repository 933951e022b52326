"""Token shards: the held-out tokens a text model ships for the app's corpus-wide views.

A bundled text model carries ``heldout_tokens.safetensors`` (one int32 tensor ``tokens``) with its
sha256 in ``config.json``; the feature index, the lens tables and the SAE metrics read windows of it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.checksums import mismatch

SHARD_KEY = "tokens"
MAX_SHARD_TOKENS = 50_000_000


class ShardError(ValueError):
    """A token shard that cannot be used (named in the message)."""


def read_shard(path: str | Path, expected_sha256: str | None = None, vocab: int | None = None) -> np.ndarray:
    """The shard's tokens as int64, checked against its recorded hash and the model's vocabulary."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise ShardError(f"{path}: file is missing")
    problem = mismatch(path, expected_sha256, "config.json")
    if problem:
        raise ShardError(problem)
    try:
        with safe_open(str(path), framework="np") as f:
            if SHARD_KEY not in f.keys():
                raise ShardError(f"{path}: no {SHARD_KEY!r} tensor")
            tokens = f.get_tensor(SHARD_KEY)
    except (SafetensorError, OSError) as exc:
        raise ShardError(f"{path}: not a readable safetensors file ({exc})") from None
    if tokens.ndim != 1 or tokens.size > MAX_SHARD_TOKENS or tokens.dtype.kind not in "iu":
        raise ShardError(f"{path}: expected one vector of up to {MAX_SHARD_TOKENS:,} token ids, got {tokens.dtype} {tokens.shape}")
    tokens = tokens.astype(np.int64)
    if tokens.size and (tokens.min() < 0 or (vocab is not None and tokens.max() >= vocab)):
        raise ShardError(f"{path}: token ids outside the model's vocabulary (0..{(vocab or 0) - 1})")
    return tokens


def bundled_shard(handle) -> np.ndarray | None:
    """A bundled text model's held-out tokens (None when the model ships none, e.g. a hub model)."""
    import json

    folder = Path(handle.info.source)
    config_path = folder / "config.json"
    if not config_path.is_file():
        return None
    config = json.loads(config_path.read_text())
    name = config.get("held_out_shard")
    if not isinstance(name, str) or "/" in name:
        return None
    hashes = config.get("files_sha256") if isinstance(config.get("files_sha256"), dict) else {}
    return read_shard(folder / name, hashes.get(name), handle.cfg.d_vocab)


def shard_windows(tokens: np.ndarray, width: int, n_windows: int) -> np.ndarray:
    """The first ``n_windows`` non-overlapping windows of ``width`` tokens of a shard."""
    n = min(len(tokens) // width, n_windows)
    return np.asarray(tokens[: n * width], dtype=np.int64).reshape(n, width)


INDEX_WINDOWS = 400  # windows of held-out text a feature index reads (~51k tokens at 128)
INDEX_FLOP_BUDGET = 4e12  # a bigger model indexes fewer windows (~10 s of this CPU)


def index_windows(handle) -> tuple[np.ndarray | None, str]:
    """Windows of held-out text for a text model's feature index, and where they come from: its
    own shard, else NeelNanda/c4-code-20k from the hub cache, else the standard library's held-out
    files (on every machine) in the model's tokenizer. Bigger models index fewer windows."""
    from core.text.corpus import CorpusError, cached_tokens, hub_dataset_documents, stdlib_documents

    width = min(handle.cfg.n_ctx, 128)
    params = sum(p.numel() for p in handle.model.parameters())
    n = int(max(16, min(INDEX_WINDOWS, INDEX_FLOP_BUDGET / (2 * params * width))))
    try:
        shard = bundled_shard(handle)
    except ShardError as exc:
        return None, f"the model's held-out shard is unusable: {exc}"
    if shard is not None:
        return shard_windows(shard, width, n), f"{n} windows of {width} held-out tokens shipped with the model"
    try:
        docs, where = hub_dataset_documents("NeelNanda/c4-code-20k", limit_bytes=4_000_000), "NeelNanda/c4-code-20k"
    except CorpusError:
        docs, where = stdlib_documents("held-out"), "the standard library's held-out files"
    return shard_windows(cached_tokens(handle.tokenizer, docs), width, n), f"{n} windows of {width} tokens of {where}"
