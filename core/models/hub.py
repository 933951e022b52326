"""Loaders for published checkpoints on the Hugging Face hub (through huggingface_hub's cache).

Offline (``HF_HUB_OFFLINE=1``, or no network) a checkpoint loads only if it is already in the
cache; otherwise the error says that the model needs network access once.
"""

from __future__ import annotations

from pathlib import Path

import torch

from core.models.bundle import load_weights
from core.models.convert import build_hooked_transformer
from core.models.errors import ModelLoadError

OTHELLO_GPT_REPO = "NeelNanda/Othello-GPT-Transformer-Lens"
NANDA_SAE_REPO = "NeelNanda/sparse_autoencoder"
NANDA_VERSIONS = {"run1": 25, "run2": 47}  # the final checkpoints of his two gelu-1l runs
OTHELLO_GPT_FILE = "synthetic_model.pth"


_REACHABLE: dict[str, tuple[float, bool]] = {}  # endpoint -> (checked at, reachable)


def hub_reachable(timeout_s: float = 2.0, remember_s: float = 60.0) -> bool:
    """Whether the hub's endpoint accepts a connection now (remembered for a minute), so an offline
    machine hears "needs network" at once instead of after the client's retries."""
    import socket
    import time
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    key = url.netloc
    checked = _REACHABLE.get(key)
    if checked and time.monotonic() - checked[0] < remember_s:
        return checked[1]
    try:
        with socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout=timeout_s):
            ok = True
    except OSError:
        ok = False
    _REACHABLE[key] = (time.monotonic(), ok)
    return ok


def hub_file(repo_id: str, filename: str, cache_dir: str | Path | None = None) -> Path:
    """Local path of a hub file: from the cache, or downloaded when the network allows."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return Path(hf_hub_download(repo_id=repo_id, filename=filename, cache_dir=cache_dir, local_files_only=True))
    except (LocalEntryNotFoundError, EntryNotFoundError, FileNotFoundError):
        pass  # not cached: the network decides
    if not hub_reachable():
        raise ModelLoadError(
            f"{repo_id}/{filename} is not in the local Hugging Face cache and the hub cannot be reached now "
            "(this model needs network access once to fetch it)"
        )
    try:
        return Path(hf_hub_download(repo_id=repo_id, filename=filename, cache_dir=cache_dir))
    except LocalEntryNotFoundError as exc:
        raise ModelLoadError(
            f"{repo_id}/{filename} is not in the local Hugging Face cache and cannot be downloaded "
            f"(this model needs network access once to fetch it): {exc}"
        ) from exc
    except (EntryNotFoundError, RepositoryNotFoundError) as exc:
        raise ModelLoadError(f"{repo_id}/{filename} does not exist on the hub: {exc}") from exc
    except OSError as exc:  # network errors surface as requests/httpx OSErrors
        raise ModelLoadError(f"{repo_id}/{filename} could not be downloaded: {exc}") from exc


def read_torch_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A ``torch.save``d state dict, read without unpickling arbitrary objects."""
    if not path.exists():
        raise ModelLoadError(f"{path}: file is missing")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged pickle stream fails in any way (IndexError, KeyError, ...)
        raise ModelLoadError(f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: {str(exc)[:200]})") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"{path}: expected a dict of tensors (a model state dict)")
    return state


def _shape(state: dict[str, torch.Tensor], key: str, path: Path, ndim: int) -> tuple[int, ...]:
    if key not in state:
        raise ModelLoadError(f"{path}: no {key!r} entry; not a HookedTransformer state dict")
    shape = tuple(state[key].shape)
    if len(shape) != ndim:
        raise ModelLoadError(f"{path}: {key} has shape {shape}, expected {ndim} dimensions")
    return shape


def tl_config_from_state_dict(state: dict[str, torch.Tensor], path: Path) -> dict:
    """Read a HookedTransformer config off a state dict's shapes (layers, widths, vocab, context).

    The published Othello-GPT is n_layers=8, d_model=512, n_heads=8, d_head=64, d_mlp=2048,
    d_vocab=61, n_ctx=59, GELU, LNPre (its LayerNorm weights were folded into the next layer).
    """
    d_vocab, d_model = _shape(state, "embed.W_E", path, 2)
    n_ctx, _ = _shape(state, "pos_embed.W_pos", path, 2)
    n_layers = 1 + max((int(k.split(".")[1]) for k in state if k.startswith("blocks.")), default=-1)
    if n_layers == 0:
        raise ModelLoadError(f"{path}: no transformer blocks found")
    n_heads, _, d_head = _shape(state, "blocks.0.attn.W_Q", path, 3)
    _, d_mlp = _shape(state, "blocks.0.mlp.W_in", path, 2)
    has_ln = "blocks.0.ln1.w" in state
    return {
        "n_layers": n_layers,
        "d_model": d_model,
        "d_head": d_head,
        "n_heads": n_heads,
        "d_mlp": d_mlp,
        "d_vocab": d_vocab,
        "n_ctx": n_ctx,
        "act_fn": "gelu",
        "normalization_type": "LN" if has_ln else "LNPre",
        "original_architecture": "othello-gpt",
    }


def load_legacy_tl_checkpoint(path: Path, device: str = "cpu"):
    """A ``HookedTransformer.state_dict()`` saved with ``torch.save`` -> ``(model, tl_config)``."""
    state = read_torch_state_dict(path)
    config = tl_config_from_state_dict(state, path)
    model = build_hooked_transformer(config, device=device, init_weights=False)  # every parameter is loaded below
    load_weights(model, state, str(path))
    model.eval()
    return model, config


def load_published_othello_gpt(cache_dir: str | Path | None = None, device: str = "cpu"):
    """Nanda's synthetic Othello-GPT (8x8) from the hub cache -> ``(model, tl_config)``."""
    return load_legacy_tl_checkpoint(hub_file(OTHELLO_GPT_REPO, OTHELLO_GPT_FILE, cache_dir), device)
