"""Published SAEs in other people's formats, turned into SAELens SAEs the browser already uses.

Nanda's gelu-1l SAEs (``NeelNanda/sparse_autoencoder``): ``{N}.pt``, a state dict with ``W_enc
(d_in, d_sae)``, ``W_dec (d_sae, d_in)``, ``b_enc (d_sae)``, ``b_dec (d_in)``, and ``{N}_cfg.json``
(``act_size``, ``dict_size`` or ``dict_mult``, ``layer``, ``site``, ``model_name``); encode
``ReLU((x - b_dec) @ W_enc + b_enc)``, decode ``f @ W_dec + b_dec`` (his 1L-Sparse-Autoencoder
code). That is exactly SAELens's standard SAE with the decoder bias subtracted from the input, so
the weights are copied into one unchanged. Files are read with ``weights_only=True`` and checked
for shape before anything is built.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from core.interp.sae_store import SAELoadError

NANDA_SAE_REPO = "NeelNanda/sparse_autoencoder"
NANDA_VERSIONS = {"run1": 25, "run2": 47}  # the final checkpoints of his two gelu-1l runs
MAX_SAE_BYTES = 2 * 1024**3
MAX_D_SAE = 1 << 20


@dataclass(frozen=True)
class PublishedSAE:
    sae: object  # a SAELens SAE
    hook: str
    model_name: str
    source: str
    note: str


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise SAELoadError(f"{path} is missing")
    if path.stat().st_size > MAX_SAE_BYTES:
        raise SAELoadError(f"{path}: {path.stat().st_size:,} bytes is more than an SAE file may have ({MAX_SAE_BYTES:,})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged file fails in zip, pickle or tensor code
        raise SAELoadError(f"{path}: not a readable PyTorch state dict ({type(exc).__name__}: {str(exc)[:160]})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SAELoadError(f"{path}: expected a dict of tensors")
    return state


def _read_config(path: Path) -> dict:
    try:
        cfg = json.loads(path.read_text())
    except FileNotFoundError:
        raise SAELoadError(f"{path} is missing") from None
    except (OSError, ValueError) as exc:
        raise SAELoadError(f"{path} is not valid JSON: {str(exc)[:120]}") from None
    if not isinstance(cfg, dict):
        raise SAELoadError(f"{path}: expected a JSON object")
    return cfg


def nanda_sae_from_files(weights: Path, config: Path) -> PublishedSAE:
    """A Nanda-format SAE (``{N}.pt`` + ``{N}_cfg.json``) as a SAELens standard SAE."""
    from sae_lens import StandardSAE, StandardSAEConfig

    cfg, state = _read_config(config), _read_state(weights)
    missing = [k for k in ("W_enc", "W_dec", "b_enc", "b_dec") if k not in state]
    if missing:
        raise SAELoadError(f"{weights}: no {', '.join(missing)}; not a Nanda-format SAE")
    d_in, d_sae = (tuple(state["W_enc"].shape) + (0, 0))[:2]
    expected = {"W_enc": (d_in, d_sae), "W_dec": (d_sae, d_in), "b_enc": (d_sae,), "b_dec": (d_in,)}
    for key, shape in expected.items():
        if tuple(state[key].shape) != shape:
            raise SAELoadError(f"{weights}: {key} has shape {tuple(state[key].shape)}, W_enc {tuple(state['W_enc'].shape)} needs {shape}")
    if not 0 < d_sae <= MAX_D_SAE:
        raise SAELoadError(f"{weights}: {d_sae:,} features is outside 1–{MAX_D_SAE:,}")
    act_size = cfg.get("act_size", d_in)
    if act_size != d_in:
        raise SAELoadError(f"{config}: act_size {act_size!r} but W_enc reads {d_in} dimensions")
    layer, site = cfg.get("layer", 0), str(cfg.get("site", "post"))
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < 1000 or site not in ("post", "pre"):
        raise SAELoadError(f"{config}: layer {layer!r} / site {site!r} do not name an MLP hook")
    hook = f"blocks.{layer}.mlp.hook_{site}"
    sae = StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=d_sae, apply_b_dec_to_input=True, dtype="float32", device="cpu"))
    with torch.no_grad():
        for key in expected:
            getattr(sae, key).data.copy_(state[key].float())
    sae.cfg.metadata.hook_name = hook
    sae.cfg.metadata.model_name = str(cfg.get("model_name", ""))
    sae.eval()
    for p in sae.parameters():
        p.requires_grad_(False)
    note = f"Nanda-format SAE ({d_sae:,} features on {hook} of {cfg.get('model_name', '?')}); encode ReLU((x − b_dec) @ W_enc + b_enc)"
    return PublishedSAE(sae, hook, str(cfg.get("model_name", "")), str(weights), note)


def load_nanda_sae(version: int | str, cache_dir: str | Path | None = None) -> PublishedSAE:
    """One of Nanda's gelu-1l SAEs from the local hub cache (``run1``/``run2`` or a number)."""
    from core.models.errors import ModelLoadError
    from core.models.hub import hub_file

    number = NANDA_VERSIONS.get(str(version), version)
    try:
        weights = hub_file(NANDA_SAE_REPO, f"{number}.pt", cache_dir)
        config = hub_file(NANDA_SAE_REPO, f"{number}_cfg.json", cache_dir)
    except ModelLoadError as exc:
        raise SAELoadError(str(exc)) from None
    return nanda_sae_from_files(weights, config)
