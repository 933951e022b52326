"""Which files each published model's loader reads from the Hugging Face hub cache, where the
cache keeps them, and whether all the required ones are there. The model registry asks it which
hub models need no network; ``python -m core.models.fetch`` downloads and verifies them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.models.hf_gpt2 import CHESS_GPT2_PGN_REPO, CHESS_GPT2_REPO
from core.models.hub import NANDA_SAE_REPO, NANDA_VERSIONS, OTHELLO_GPT_FILE, OTHELLO_GPT_REPO
from core.models.text_hub import GELU_1L_FILE, GELU_1L_REPO, NEOX_DIGITS_REPO
from core.models.nanogpt import CHESS_GPT_FILE, CHESS_GPT_META, CHESS_GPT_REPO, NANOGPT_OTHELLO6_REPO


@dataclass(frozen=True)
class HubFile:
    repo: str
    names: tuple[str, ...]  # the file, or alternatives of which one is enough (safetensors or .bin)
    required: bool = True


# The files each hub model's loader reads (see its loader in core/models/).
HUB_FILES: dict[str, tuple[HubFile, ...]] = {
    "othello-gpt-synthetic": (HubFile(OTHELLO_GPT_REPO, (OTHELLO_GPT_FILE,)),),
    "othello-gpt-6x6-nanogpt": (HubFile(NANOGPT_OTHELLO6_REPO, ("model.safetensors",)), HubFile(NANOGPT_OTHELLO6_REPO, ("config.json",), required=False)),
    "chess-gpt2-uci": (
        HubFile(CHESS_GPT2_REPO, ("config.json",)),
        HubFile(CHESS_GPT2_REPO, ("model.safetensors", "pytorch_model.bin")),
        HubFile(CHESS_GPT2_REPO, ("tokenizer.json",), required=False),
    ),
    "chess-gpt-karvonen": (HubFile(CHESS_GPT_REPO, (CHESS_GPT_FILE,)), HubFile(CHESS_GPT_REPO, (CHESS_GPT_META,))),
    "chess-gpt2-karvonen": (
        HubFile(CHESS_GPT2_PGN_REPO, ("config.json",)),
        HubFile(CHESS_GPT2_PGN_REPO, ("model.safetensors", "pytorch_model.bin")),
        HubFile(CHESS_GPT2_PGN_REPO, ("tokenizer.json",), required=False),
    ),
    "gelu-1l": (
        HubFile(GELU_1L_REPO, ("config.json",)),
        HubFile(GELU_1L_REPO, (GELU_1L_FILE,)),
        HubFile(NEOX_DIGITS_REPO, ("tokenizer.json",)),
        # Nanda's two gelu-1l SAEs (the SAE browser offers the ones in the cache) and a text corpus
        *(HubFile(NANDA_SAE_REPO, (f"{n}{suffix}",), required=False) for n in NANDA_VERSIONS.values() for suffix in (".pt", "_cfg.json")),
    ),
}


def cached_path(repo: str, filename: str, cache_dir: str | Path | None = None) -> Path | None:
    """The file's path in the local cache, or None (never touches the network)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id=repo, filename=filename, cache_dir=cache_dir)
    return Path(found) if isinstance(found, str) else None


def in_cache(name: str, cache_dir: str | Path | None = None) -> bool:
    """Whether every required file of hub model ``name`` is in the local cache (no hashing)."""
    return all(
        any(cached_path(f.repo, n, cache_dir) for n in f.names) for f in HUB_FILES.get(name, ()) if f.required
    ) if name in HUB_FILES else False
