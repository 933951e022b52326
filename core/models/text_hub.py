"""Published text models from the hub cache: TransformerLens's ``gelu-1l`` without the network.

TransformerLens 3.9's ``from_pretrained("gelu-1l")`` lists the repository's files through the hub
API, which fails offline even when every file is cached. The same model is built here from the
cached files: ``config.json`` through TransformerLens's own config conversion for Nanda's models,
``model_final.pth`` (already in TransformerLens's layout) read with ``weights_only=True``, and the
tokenizer from the cached ``tokenizer.json`` of ``NeelNanda/gpt-neox-tokenizer-digits``. No weight
processing is applied (no folded LayerNorm, no centring): the logits are the same, and SAEs on
``mlp.hook_post`` (Nanda's) see the same activations either way.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from core.models.bundle import check_tl_config, load_weights
from core.models.convert import build_hooked_transformer
from core.models.errors import ModelLoadError
from core.models.hub import hub_file, read_torch_state_dict
from core.text.tokenizer import TextTokenizer, TokenizerError

GELU_1L_REPO = "NeelNanda/GELU_1L512W_C4_Code"
GELU_1L_FILE = "model_final.pth"
NEOX_DIGITS_REPO = "NeelNanda/gpt-neox-tokenizer-digits"


def neel_tl_config(repo: str, cache_dir: str | Path | None = None) -> dict:
    """TransformerLens's own conversion of a cached Nanda ``config.json`` (read from the cache only)."""
    hub_file(repo, "config.json", cache_dir)  # cached (or fetched once when the network allows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from transformer_lens.loading_from_pretrained import convert_neel_model_config

        try:
            cfg = convert_neel_model_config(repo, cache_dir=cache_dir, local_files_only=True)
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise ModelLoadError(f"{repo}/config.json: not a config TransformerLens can convert ({type(exc).__name__}: {str(exc)[:160]})") from None
    cfg.pop("tokenizer_name", None)  # the tokenizer is read from the cache here, never downloaded by TL
    return cfg


def load_gelu_1l(cache_dir: str | Path | None = None, device: str = "cpu"):
    """``(HookedTransformer, tl_config, TextTokenizer)`` of gelu-1l from the local hub cache."""
    tl = neel_tl_config(GELU_1L_REPO, cache_dir)
    check_tl_config(tl, f"{GELU_1L_REPO}/config.json")
    path = hub_file(GELU_1L_REPO, GELU_1L_FILE, cache_dir)
    state = read_torch_state_dict(path)
    try:
        model = build_hooked_transformer(tl, device=device, init_weights=False)  # every parameter is loaded below
    except (TypeError, ValueError, AssertionError) as exc:
        raise ModelLoadError(f"{GELU_1L_REPO}/config.json: invalid model config ({exc})") from None
    load_weights(model, state, str(path))
    model.eval()
    try:
        tokenizer = TextTokenizer.from_file(hub_file(NEOX_DIGITS_REPO, "tokenizer.json", cache_dir))
    except TokenizerError as exc:
        raise ModelLoadError(str(exc)) from None
    if tokenizer.vocab_size > tl["d_vocab"]:
        raise ModelLoadError(f"{NEOX_DIGITS_REPO}/tokenizer.json has {tokenizer.vocab_size:,} tokens; the model reads {tl['d_vocab']:,}")
    return model, tl, tokenizer


# Other TransformerLens text models: TransformerLens's own loader, which needs the hub's API.
TL_TEXT_MODELS = {
    "gelu-2l": "2 layers, d_model 512, C4 + code (Nanda)",
    "attn-only-2l": "2 attention-only layers (Nanda), the induction-head model",
    "gpt2-small": "GPT-2 small, 12 layers, d_model 768 (OpenAI)",
    "pythia-70m": "Pythia-70M, 6 layers, d_model 512 (EleutherAI)",
}


def load_tl_text_model(name: str, cache_dir: str | Path | None = None, device: str = "cpu"):
    """``(HookedTransformer, tl_config, TextTokenizer)`` through ``HookedTransformer.from_pretrained``
    (no weight processing, as gelu-1l here); ``ModelLoadError`` at once when the hub is unreachable."""
    from core.models.hub import hub_reachable

    if not hub_reachable():
        raise ModelLoadError(f"{name} loads through TransformerLens's own loader, which needs network access to the hub (it lists the repository's files even when they are cached); gelu-1l and the bundled text model work offline")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from transformer_lens import HookedTransformer

        try:
            model = HookedTransformer.from_pretrained(name, device=device, cache_dir=cache_dir, fold_ln=False, center_writing_weights=False, center_unembed=False)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(f"{name}: TransformerLens could not load it ({type(exc).__name__}: {str(exc)[:200]})") from None
    backend = getattr(model.tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ModelLoadError(f"{name}: its tokenizer has no fast (tokenizers) form to read")
    model.eval()
    return model, model.cfg.to_dict(), TextTokenizer(backend, name)
