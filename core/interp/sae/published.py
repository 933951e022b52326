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

from core.interp.sae.store import SAELoadError
from core.models.hub import NANDA_SAE_REPO, NANDA_VERSIONS

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
    _fill(sae, {key: state[key] for key in expected}, hook, str(cfg.get("model_name", "")))
    note = f"Nanda-format SAE ({d_sae:,} features on {hook} of {cfg.get('model_name', '?')}); encode ReLU((x − b_dec) @ W_enc + b_enc)"
    return PublishedSAE(sae, hook, str(cfg.get("model_name", "")), str(weights), note)


def _fill(sae, weights: dict[str, torch.Tensor], hook: str, model_name: str) -> None:
    """Copy a published file's weights into a SAELens SAE, name its hook and model, and freeze it
    (a shared, read-only SAE: no gradients, eval mode)."""
    with torch.no_grad():
        for key, value in weights.items():
            getattr(sae, key).data.copy_(value.float())
    sae.cfg.metadata.hook_name = hook
    sae.cfg.metadata.model_name = model_name
    sae.eval()
    for p in sae.parameters():
        p.requires_grad_(False)


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


# -- dictionary_learning (Karvonen et al.'s board-game SAEs) --------------------------------------

DL_CLASSES = ("AutoEncoder", "GatedAutoEncoder", "AutoEncoderTopK")
MAX_ZIP_MEMBER_BYTES = 512 * 1024**2
MAX_ZIP_RATIO = 200  # a member that inflates more than this is refused (a zip bomb, not an SAE)


def _zip_errors() -> tuple[type[BaseException], ...]:
    """What reading a damaged zip can raise: a bad directory, a broken deflate stream, a cut file,
    an unsupported or encrypted member."""
    import struct
    import zipfile
    import zlib

    return (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, struct.error, OSError, ValueError)


def dl_hook(trainer: dict) -> str:
    """The TransformerLens hook a dictionary_learning trainer's ``layer`` / ``submodule_name``
    names (the residual stream after the block unless the name says attention or MLP)."""
    layer = trainer.get("layer")
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < 1000:
        raise SAELoadError(f"config.json: trainer.layer {str(layer)[:20]!r} is not a layer number")
    name = str(trainer.get("submodule_name") or "resid_post").lower()
    if "mlp" in name:
        return f"blocks.{layer}.hook_mlp_out"
    if "attn" in name:
        return f"blocks.{layer}.hook_attn_out"
    return f"blocks.{layer}.hook_resid_post"


def dl_sae_from_state(state: dict[str, torch.Tensor], config: dict, source: str) -> PublishedSAE:
    """A dictionary_learning SAE (``ae.pt`` state dict + ``config.json``) as the SAELens SAE with
    the same encode and decode (the weights are copied, transposed to SAELens's layout)."""
    trainer = config.get("trainer") if isinstance(config.get("trainer"), dict) else None
    if trainer is None:
        raise SAELoadError(f"{source}: config.json has no 'trainer' object")
    cls = str(trainer.get("dict_class", ""))
    if cls not in DL_CLASSES:
        raise SAELoadError(f"{source}: dict_class {cls[:40]!r} is not one BoardLens reads ({', '.join(DL_CLASSES)})")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SAELoadError(f"{source}: ae.pt is not a dict of tensors")
    if "encoder.weight" not in state or "decoder.weight" not in state:
        raise SAELoadError(f"{source}: ae.pt has no encoder.weight / decoder.weight; not a dictionary_learning SAE")
    d_sae, d_in = tuple(state["encoder.weight"].shape) if state["encoder.weight"].ndim == 2 else (0, 0)
    if tuple(state["decoder.weight"].shape) != (d_in, d_sae) or not 0 < d_sae <= MAX_D_SAE:
        raise SAELoadError(f"{source}: encoder.weight {tuple(state['encoder.weight'].shape)} and decoder.weight {tuple(state['decoder.weight'].shape)} do not fit together")
    for key, want in (("activation_dim", d_in), ("dict_size", d_sae)):
        if trainer.get(key, want) != want:
            raise SAELoadError(f"{source}: config.json says {key} {trainer.get(key)!r}, the weights have {want}")
    bias_key = {"AutoEncoder": "bias", "GatedAutoEncoder": "decoder_bias", "AutoEncoderTopK": "b_dec"}[cls]
    needed = {bias_key: (d_in,)} | ({"encoder.bias": (d_sae,)} if cls != "GatedAutoEncoder" else {"gate_bias": (d_sae,), "mag_bias": (d_sae,), "r_mag": (d_sae,)})
    for key, shape in needed.items():
        if key not in state or tuple(state[key].shape) != shape:
            raise SAELoadError(f"{source}: {cls} needs {key} of shape {shape}, found {tuple(state[key].shape) if key in state else 'none'}")
    common = dict(d_in=d_in, d_sae=d_sae, apply_b_dec_to_input=True, dtype="float32", device="cpu")
    if cls == "AutoEncoder":
        from sae_lens import StandardSAE, StandardSAEConfig

        sae = StandardSAE(StandardSAEConfig(**common))
        weights = {"W_enc": state["encoder.weight"].T, "b_enc": state["encoder.bias"], "W_dec": state["decoder.weight"].T, "b_dec": state["bias"]}
    elif cls == "GatedAutoEncoder":
        from sae_lens import GatedSAE, GatedSAEConfig

        sae = GatedSAE(GatedSAEConfig(**common))
        weights = {"W_enc": state["encoder.weight"].T, "b_gate": state["gate_bias"], "b_mag": state["mag_bias"], "r_mag": state["r_mag"], "W_dec": state["decoder.weight"].T, "b_dec": state["decoder_bias"]}
    else:
        from sae_lens import TopKSAE, TopKSAEConfig

        k = int(state["k"]) if "k" in state else trainer.get("k")  # the 2024 layout saved no k: the config has it
        if isinstance(k, bool) or not isinstance(k, int) or not 0 < k <= d_sae:
            raise SAELoadError(f"{source}: an AutoEncoderTopK needs k in 1..{d_sae} (a 'k' buffer or trainer.k), got {str(k)[:20]!r}")
        sae = TopKSAE(TopKSAEConfig(k=k, **common))
        weights = {"W_enc": state["encoder.weight"].T, "b_enc": state["encoder.bias"], "W_dec": state["decoder.weight"].T, "b_dec": state["b_dec"]}
    hook = dl_hook(trainer)
    _fill(sae, weights, hook, str(trainer.get("lm_name", "")))
    note = f"dictionary_learning {cls} ({d_sae:,} features on {hook} of {trainer.get('lm_name', '?')}), from {source}"
    return PublishedSAE(sae, hook, str(trainer.get("lm_name", "")), source, note)


def dl_trainers_in_zip(path: Path) -> list[str]:
    """The trainer folders of a dictionary_learning zip (each holds ``ae.pt`` and ``config.json``)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except _zip_errors() as exc:
        raise SAELoadError(f"{path}: not a readable zip file ({exc})") from None
    return sorted(n[: -len("ae.pt")].rstrip("/") for n in names if n.endswith("/ae.pt") and n[: -len("ae.pt")] + "config.json" in names)


def _zip_member(zf, name: str, path: Path) -> bytes:
    info = zf.getinfo(name)
    if info.file_size > MAX_ZIP_MEMBER_BYTES or info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1):
        raise SAELoadError(f"{path}: {name} inflates to {info.file_size:,} bytes; refused (limit {MAX_ZIP_MEMBER_BYTES:,}, ratio {MAX_ZIP_RATIO})")
    return zf.read(name)


def dl_sae_from_zip(path: Path, trainer_folder: str) -> PublishedSAE:
    """One trainer of a dictionary_learning zip, read in memory (nothing is extracted to disk)."""
    import io
    import zipfile

    source = f"{path.name}:{trainer_folder}"
    try:
        with zipfile.ZipFile(path) as zf:
            config_bytes = _zip_member(zf, f"{trainer_folder}/config.json", path)
            state_bytes = _zip_member(zf, f"{trainer_folder}/ae.pt", path)
    except KeyError:
        raise SAELoadError(f"{path}: no trainer {trainer_folder!r} (it has {', '.join(dl_trainers_in_zip(path)[:6]) or 'none'})") from None
    except _zip_errors() as exc:
        raise SAELoadError(f"{path}: not a readable zip file ({type(exc).__name__}: {str(exc)[:120]})") from None
    try:
        config = json.loads(config_bytes)
    except ValueError as exc:
        raise SAELoadError(f"{source}/config.json is not valid JSON: {str(exc)[:120]}") from None
    try:
        state = torch.load(io.BytesIO(state_bytes), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged member fails in zip, pickle or tensor code
        raise SAELoadError(f"{source}/ae.pt: not a readable PyTorch state dict ({type(exc).__name__}: {str(exc)[:160]})") from None
    if not isinstance(config, dict):
        raise SAELoadError(f"{source}/config.json: expected a JSON object")
    return dl_sae_from_state(state, config, source)


# -- fitting a published SAE to a model ------------------------------------------------------------


def fit_problem(published: PublishedSAE, handle) -> str | None:
    """Why the SAE cannot read this model's activations (None when it can): its hook must exist
    in the model, with the SAE's width."""
    from core.models.handle import block_of

    layer = block_of(published.hook)
    if layer is not None and layer >= handle.cfg.n_layers:
        return f"the SAE reads layer {layer}; the model has {handle.cfg.n_layers} layers (the SAE: {published.note})"
    width = handle.hook_width(published.hook)
    if int(published.sae.cfg.d_in) != width:
        return f"it reads {int(published.sae.cfg.d_in)} dimensions; {published.hook} of {handle.name} has {width} (the SAE: {published.note})"
    return None


def load_saelens_from_hub(repo: str, folder: str, cache_dir: str | Path | None = None) -> PublishedSAE:
    """A SAELens-format SAE (``cfg.json`` + ``sae_weights.safetensors``) in a folder of a hub
    repository, from the local cache (e.g. ``callummcdougall/arena-demos-othellogpt``)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    from core.interp.sae.store import load_sae

    try:
        root = Path(snapshot_download(repo, cache_dir=cache_dir, local_files_only=True, allow_patterns=[f"{folder}/*"]))
    except (LocalEntryNotFoundError, OSError, ValueError) as exc:
        raise SAELoadError(f"{repo}/{folder} is not in the local hub cache ({type(exc).__name__}); download it once with network access") from None
    sae = load_sae(root / folder)
    hook = sae.cfg.metadata.hook_name or ""
    if not hook:
        raise SAELoadError(f"{repo}/{folder}/cfg.json names no hook")
    return PublishedSAE(sae, hook, str(sae.cfg.metadata.model_name or ""), f"{repo}/{folder}", f"SAELens {sae.cfg.architecture()} SAE ({int(sae.cfg.d_sae):,} features on {hook}), from {repo}/{folder}")


# -- weight processing -------------------------------------------------------------------------------


def expects_centred_residual(published: PublishedSAE) -> bool:
    """Karvonen et al.'s Othello SAEs were trained on an Othello-GPT loaded with TransformerLens's
    default processing, whose centred writing weights make every residual vector mean-zero over
    ``d_model``; MLP hooks and the chess GPT-2 copy (read unprocessed) are not affected."""
    return "othello" in published.model_name.lower() and "transformer-lens" in published.model_name.lower() and "resid" in published.hook


def fold_centring(sae) -> None:
    """Make ``sae`` encode ``x`` as it would encode ``x − mean(x)`` (centring over the last axis,
    the processed model's residual stream): ``W_enc ← C W_enc`` with ``C = I − 11ᵀ/d``, and the
    encoder biases absorb the decoder bias's mean. Exact for any input; harmless on inputs that are
    already centred. The reconstruction is the centred one, which a LayerNorm downstream cannot
    tell from the uncentred vector, so splicing it in leaves the logits of the processed model."""
    with torch.no_grad():
        w = sae.W_enc.data
        col = w.sum(0)  # 1ᵀ W_enc, per feature
        mean_b = sae.b_dec.data.mean()
        sae.W_enc.data = w - w.mean(0, keepdim=True)
        if hasattr(sae, "b_gate"):  # gated: both paths read (x − b_dec) @ W_enc
            sae.b_gate.data -= mean_b * col
            sae.b_mag.data -= mean_b * col * sae.r_mag.data.exp()
        else:
            sae.b_enc.data -= mean_b * col


def prepare_for(published: PublishedSAE) -> PublishedSAE:
    """Apply the weight processing the SAE expects (said in the note)."""
    if not expects_centred_residual(published):
        return published
    fold_centring(published.sae)
    return PublishedSAE(published.sae, published.hook, published.model_name, published.source,
                        published.note + "; trained on TransformerLens's processed model (centred residual stream): its inputs are centred here, folded into the encoder")


# -- what the hub cache holds for a model -------------------------------------------------------------


@dataclass(frozen=True)
class PublishedRef:
    """A published SAE found in the local hub cache: enough to list it and load it."""

    label: str
    hook: str
    kind: str  # "dictionary_learning" or "saelens"
    location: tuple[str, str]  # (zip path, trainer folder) or (repo, folder)


PUBLISHED_REPOS = {  # the models' names in BoardLens -> where their published SAEs live
    "chess-gpt2-karvonen": (("dictionary_learning", "adamkarvonen/chess_saes"),),
    "chess-gpt-karvonen": (("dictionary_learning", "adamkarvonen/chess_saes"),),
    "othello-gpt-synthetic": (("dictionary_learning", "adamkarvonen/othello_saes"), ("saelens", "callummcdougall/arena-demos-othellogpt")),
}


def _cached_snapshot(repo: str, cache_dir=None) -> Path | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo, cache_dir=cache_dir, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None


def discover(model_name: str, cache_dir=None) -> list[PublishedRef]:
    """The published SAEs of ``model_name`` in the local hub cache (reads only their configs)."""
    import zipfile

    out = []
    for kind, repo in PUBLISHED_REPOS.get(model_name, ()):
        root = _cached_snapshot(repo, cache_dir)
        if root is None:
            continue
        if kind == "dictionary_learning":
            for path in sorted(root.glob("*.zip")):
                try:
                    trainers = dl_trainers_in_zip(path)
                    with zipfile.ZipFile(path) as zf:
                        configs = {t: json.loads(_zip_member(zf, f"{t}/config.json", path)) for t in trainers}
                except (SAELoadError, *_zip_errors()):
                    continue  # a damaged zip is reported when a user picks it, not while listing
                for trainer, config in configs.items():
                    try:
                        hook = dl_hook(config.get("trainer") or {})
                    except (SAELoadError, AttributeError):
                        continue
                    out.append(PublishedRef(f"{path.stem}/{trainer.split('/')[-1]}", hook, kind, (str(path), trainer)))
        else:
            for cfg in sorted(root.glob("*/cfg.json")):
                try:
                    hook = str(json.loads(cfg.read_text()).get("hook_name") or json.loads(cfg.read_text()).get("metadata", {}).get("hook_name") or cfg.parent.name.split("-")[0])
                except (OSError, ValueError, AttributeError):
                    continue
                out.append(PublishedRef(f"{repo.split('/')[-1]}/{cfg.parent.name}", hook, kind, (repo, cfg.parent.name)))
    return out


def load_ref(ref: PublishedRef, cache_dir=None) -> PublishedSAE:
    if ref.kind == "dictionary_learning":
        return prepare_for(dl_sae_from_zip(Path(ref.location[0]), ref.location[1]))
    return prepare_for(load_saelens_from_hub(*ref.location, cache_dir=cache_dir))


# Karvonen et al. 2024 (project blog), layer-5 resid_post: (coverage, board reconstruction).
PAPER_FIGURES = {
    "chess": {"sae_features": (0.45, 0.85), "mlp_neurons": (0.26, 0.56), "random_init_sae": (0.11, 0.01), "linear probe": (None, 0.98)},
    "othello": {"sae_features": (0.52, 0.95), "mlp_neurons": (0.53, 0.82), "random_init_sae": (0.27, 0.08), "linear probe": (None, 0.99)},
}
