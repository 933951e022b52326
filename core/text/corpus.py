"""Text corpora: where documents come from, and their tokens cached by content hash.

Sources a researcher has: CPython's own standard library and its documentation prose (on every
machine, so the bundled text model can be trained and checked anywhere), a local text / JSONL /
parquet file or a folder of text files, and a hub dataset already in the local cache (parquet under
``data/``, column ``text``: ``NeelNanda/c4-code-20k``, ``NeelNanda/pile-10k``). Every reader checks
sizes before it reads; tokens are computed in batches with a progress callback and kept on disk
keyed by the sha256 of the documents and of the tokenizer, so a corpus is tokenised once.
"""

from __future__ import annotations

import hashlib
import json
import os
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from core.text.tokenizer import TextTokenizer

MAX_CORPUS_BYTES = 512 * 1024 * 1024  # what one corpus may hold in memory as text
MAX_FILE_BYTES = 256 * 1024 * 1024
TEXT_SUFFIXES = (".txt", ".md", ".rst", ".py", ".json", ".csv", ".html", ".tex", ".c", ".h", ".js")
STDLIB_SKIP = ("test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__")
HELD_OUT_EVERY = 10  # one stdlib file in ten (by a hash of its name) is held out


class CorpusError(ValueError):
    """A corpus source that cannot be read (named in the message)."""


@dataclass(frozen=True)
class Document:
    name: str  # where it came from (a relative path, or "file.jsonl:17")
    text: str


# -- sources ----------------------------------------------------------------------------------


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def held_out(name: str) -> bool:
    """The split of the standard-library corpus: a fixed hash of the file's relative name, so
    every machine with the same Python splits it the same way."""
    return int(hashlib.sha256(name.encode()).hexdigest(), 16) % HELD_OUT_EVERY == 0


def stdlib_files(root: Path | None = None) -> list[tuple[str, Path]]:
    """``(relative name, path)`` of the standard library's Python sources without its tests, and
    ``pydoc_data/topics.py`` (the documentation's prose) among them, sorted by name."""
    root = root or stdlib_root()
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if any(part in STDLIB_SKIP for part in rel.parts):
            continue
        out.append((rel.as_posix(), path))
    return out


def stdlib_documents(split: str, root: Path | None = None) -> list[Document]:
    """The ``"train"`` or ``"held-out"`` part of the standard-library corpus."""
    if split not in ("train", "held-out"):
        raise ValueError("split must be 'train' or 'held-out'")
    want = split == "held-out"
    return [Document(name, _read_text(path)) for name, path in stdlib_files(root) if held_out(name) == want]


def _read_text(path: Path, limit: int = MAX_FILE_BYTES) -> str:
    size = path.stat().st_size
    if size > limit:
        raise CorpusError(f"{path}: {size:,} bytes is more than the {limit:,} a corpus file may have")
    return path.read_bytes().decode("utf-8", errors="replace")


def read_documents(source: str | Path, limit_bytes: int = MAX_CORPUS_BYTES, column: str = "text") -> list[Document]:
    """Documents of a local source: a text file (one document), a JSONL file (one object per line,
    its ``column``), a parquet file (its ``column``) or a folder (every text file under it)."""
    path = Path(source)
    if not path.exists():
        raise CorpusError(f"{path}: no such file or folder")
    docs, total = [], 0
    for doc in _iter_documents(path, column):
        total += len(doc.text)
        if total > limit_bytes:
            raise CorpusError(f"{path}: more than {limit_bytes:,} characters of text; give a smaller corpus or a folder of part of it")
        docs.append(doc)
    if not docs:
        raise CorpusError(f"{path}: no text found (text files, .jsonl or .parquet with a {column!r} column)")
    return docs


def _iter_documents(path: Path, column: str) -> Iterator[Document]:
    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES + (".jsonl", ".parquet")):
            yield from _iter_documents(file, column)
        return
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from _jsonl_documents(path, column)
    elif suffix == ".parquet":
        yield from _parquet_documents(path, column)
    else:
        yield Document(path.name, _read_text(path))


def _jsonl_documents(path: Path, column: str) -> Iterator[Document]:
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise CorpusError(f"{path}:{number}: not a JSON line ({str(exc)[:80]})") from None
            text = record.get(column) if isinstance(record, dict) else None
            if not isinstance(text, str):
                raise CorpusError(f"{path}:{number}: no text in {column!r}")
            yield Document(f"{path.name}:{number}", text)


def _parquet_documents(path: Path, column: str) -> Iterator[Document]:
    import pyarrow.parquet as pq

    if path.stat().st_size > MAX_FILE_BYTES:
        raise CorpusError(f"{path}: {path.stat().st_size:,} bytes is more than the {MAX_FILE_BYTES:,} a corpus file may have")
    try:
        table = pq.read_table(path, columns=[column])
    except Exception as exc:  # noqa: BLE001 - arrow raises several types for a damaged file or a missing column
        raise CorpusError(f"{path}: not a parquet file with a {column!r} column ({str(exc)[:160]})") from None
    for i, text in enumerate(table.column(column).to_pylist()):
        if isinstance(text, str):
            yield Document(f"{path.name}:{i}", text)


def hub_dataset_documents(repo: str, cache_dir: str | Path | None = None, limit_bytes: int = MAX_CORPUS_BYTES, column: str = "text") -> list[Document]:
    """A hub dataset's parquet files under ``data/`` from the local hub cache (no network)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = Path(snapshot_download(repo, repo_type="dataset", cache_dir=cache_dir, local_files_only=True, allow_patterns=["data/*.parquet", "*.parquet"]))
    except (LocalEntryNotFoundError, OSError, ValueError) as exc:
        raise CorpusError(f"dataset {repo} is not in the local hub cache ({type(exc).__name__}); download it once with network access") from None
    files = sorted(folder.glob("data/*.parquet")) or sorted(folder.glob("*.parquet"))
    if not files:
        raise CorpusError(f"dataset {repo}: no parquet files in its cached snapshot")
    docs, total = [], 0
    for file in files:
        for doc in _parquet_documents(file, column):
            total += len(doc.text)
            if total > limit_bytes:
                return docs  # a big dataset: its first part, which is what a browser index needs
            docs.append(doc)
    return docs


# -- tokens -----------------------------------------------------------------------------------


def documents_digest(docs: Iterable[Document]) -> str:
    h = hashlib.sha256()
    for doc in docs:
        h.update(doc.name.encode() + b"\0" + doc.text.encode("utf-8", errors="replace") + b"\0")
    return h.hexdigest()


def tokenizer_digest(tok: TextTokenizer) -> str:
    return hashlib.sha256(tok._tok.to_str().encode()).hexdigest()


def tokenize_documents(tok: TextTokenizer, docs: list[Document], batch: int = 256, progress: Callable[[str, float], None] | None = None) -> np.ndarray:
    """All documents' tokens in one array, each document followed by the end-of-text token (when
    the tokenizer has one), encoded ``batch`` documents at a time."""
    sep = [tok.end_of_text] if tok.end_of_text is not None else []
    parts = []
    for start in range(0, len(docs), batch):
        for ids in tok.encode_batch([d.text for d in docs[start : start + batch]]):
            parts.append(np.asarray(ids + sep, dtype=np.int32))
        if progress:
            progress(f"tokenising: {min(start + batch, len(docs)):,}/{len(docs):,} documents", min(1.0, (start + batch) / len(docs)))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)


def cache_dir() -> Path:
    return Path(os.environ.get("BOARDLENS_CACHE") or Path.home() / ".cache" / "boardlens") / "tokens"


def cached_tokens(tok: TextTokenizer, docs: list[Document], progress: Callable[[str, float], None] | None = None, root: Path | None = None) -> np.ndarray:
    """``tokenize_documents``, kept on disk by the digest of the documents and the tokenizer."""
    root = root or cache_dir()
    key = hashlib.sha256((documents_digest(docs) + tokenizer_digest(tok)).encode()).hexdigest()[:32]
    path = root / f"{key}.npy"
    if path.is_file():
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            pass  # damaged: made again below
    tokens = tokenize_documents(tok, docs, progress=progress)
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, tokens, allow_pickle=False)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache: the tokens are still returned
    return tokens
