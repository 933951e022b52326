"""gelu-1l and Nanda's SAEs from a hub cache in their exact published layouts, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from core.interp.sae.published import NANDA_SAE_REPO, load_nanda_sae, nanda_sae_from_files
from core.interp.sae.store import SAELoadError
from core.models import registry
from core.models.errors import ModelLoadError
from core.models.text_hub import GELU_1L_FILE, GELU_1L_REPO, NEOX_DIGITS_REPO
from core.text.tokenizer import save_tokenizer, train_bpe
from tests.rounding import forward_bound
from tests.test_published_saes import sae_bounds

COMMIT = "0123456789abcdef0123456789abcdef01234567"
# gelu-1l's config.json keys (Nanda's training config: TransformerLens reads the model ones).
GELU_CONFIG = {
    "act_fn": "gelu", "attn_only": False, "batch_size": 32, "d_head": 8, "d_mlp": 64, "d_model": 32, "d_vocab": 300,
    "dataset_name": "c4_code", "lr": 0.001, "n_ctx": 64, "n_heads": 4, "n_layers": 1, "normalization": "LN",
    "seed": 0, "shortformer_pos": False, "tokenizer_name": NEOX_DIGITS_REPO, "weight_decay": 0.05,
}


def snapshot(cache: Path, repo: str) -> Path:
    repo_dir = cache / ("models--" + repo.replace("/", "--"))
    folder = repo_dir / "snapshots" / COMMIT
    folder.mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(COMMIT)
    return folder


def reference_model(seed: int = 3):
    """A HookedTransformer built directly from the config's model fields (random weights)."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    torch.manual_seed(seed)
    fields = {k: GELU_CONFIG[k] for k in ("act_fn", "attn_only", "d_head", "d_mlp", "d_model", "d_vocab", "n_ctx", "n_heads", "n_layers")}
    model = HookedTransformer(HookedTransformerConfig(**fields, normalization_type="LN"))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)  # biases and LayerNorms away from their initial values too
    return model.eval()


def write_gelu_cache(cache: Path, model) -> None:
    folder = snapshot(cache, GELU_1L_REPO)
    (folder / "config.json").write_text(json.dumps(GELU_CONFIG))
    torch.save({k: v.clone() for k, v in model.state_dict().items()}, folder / GELU_1L_FILE)
    tok = train_bpe(["def f(x):\n    return x + 1  # the cat sat on the mat\n"] * 30, 300)
    save_tokenizer(tok, snapshot(cache, NEOX_DIGITS_REPO) / "tokenizer.json")


@pytest.fixture()
def offline_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


def test_gelu_1l_loads_offline_from_its_hub_layout_and_matches_a_direct_build(offline_cache):
    with pytest.raises(ModelLoadError, match="network access"):
        registry.load_model("gelu-1l", cache_dir=offline_cache)
    reference = reference_model()
    write_gelu_cache(offline_cache, reference)
    handle = registry.load_model("gelu-1l", cache_dir=offline_cache)
    assert handle.kind == "text" and handle.cfg.n_layers == 1 and handle.cfg.act_fn == "gelu"
    text = "def f(x):\n    return x + 1  # the cat"
    ids = handle.tokenizer.encode(text)
    assert handle.tokenizer.decode(ids) == text and "".join(handle.tokenizer.spans(ids)) == text
    tokens = torch.tensor([ids[:40], ids[::-1][:40]])
    with torch.no_grad():
        expected = reference(tokens)
    assert (handle.forward(tokens) - expected).abs().max().item() <= forward_bound(handle.model, tokens)  # float32 rounding (tests/rounding.py)
    with pytest.raises(ValueError, match="no board game"):
        handle.game


def test_a_damaged_gelu_checkpoint_names_the_file(offline_cache):
    write_gelu_cache(offline_cache, reference_model())
    (snapshot(offline_cache, GELU_1L_REPO) / GELU_1L_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match=GELU_1L_FILE):
        registry.load_model("gelu-1l", cache_dir=offline_cache)


def write_nanda_sae(folder: Path, version: int, d_in: int = 64, d_sae: int = 256, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    state = {
        "W_enc": torch.randn(d_in, d_sae, generator=g) * 0.2,
        "W_dec": torch.randn(d_sae, d_in, generator=g) * 0.2,
        "b_enc": torch.randn(d_sae, generator=g) * 0.1,
        "b_dec": torch.randn(d_in, generator=g) * 0.1,
    }
    torch.save(state, folder / f"{version}.pt")
    cfg = {"act_size": d_in, "dict_mult": d_sae // d_in, "dict_size": d_sae, "l1_coeff": 3e-4, "layer": 0, "site": "post", "model_name": "gelu-1l", "enc_dtype": "fp32", "seed": 49, "device": "cuda"}
    (folder / f"{version}_cfg.json").write_text(json.dumps(cfg))
    return state


def test_a_nanda_format_sae_encodes_and_decodes_as_its_formula(offline_cache):
    state = write_nanda_sae(snapshot(offline_cache, NANDA_SAE_REPO), 25)
    published = load_nanda_sae("run1", cache_dir=offline_cache)
    assert published.hook == "blocks.0.mlp.hook_post" and published.model_name == "gelu-1l"
    x = torch.randn(50, 64, generator=torch.Generator().manual_seed(1))
    expected = torch.relu((x - state["b_dec"]) @ state["W_enc"] + state["b_enc"])
    feats = published.sae.encode(x)
    encode_bound, decode_bound = sae_bounds(published.sae, x, feats)  # float32 rounding of the products
    assert (feats - expected).abs().max().item() <= encode_bound and (feats > 0).any()
    assert (published.sae.decode(feats) - (expected @ state["W_dec"] + state["b_dec"])).abs().max().item() <= 2 * decode_bound


@pytest.mark.parametrize("damage", ["truncated", "wrong-shape", "not-json", "bad-site"])
def test_a_damaged_nanda_sae_names_the_file(tmp_path, damage):
    state = write_nanda_sae(tmp_path, 1)
    if damage == "truncated":
        (tmp_path / "1.pt").write_bytes((tmp_path / "1.pt").read_bytes()[:100])
    elif damage == "wrong-shape":
        torch.save({**state, "b_dec": torch.zeros(3)}, tmp_path / "1.pt")
    elif damage == "not-json":
        (tmp_path / "1_cfg.json").write_text("{oops")
    else:
        cfg = json.loads((tmp_path / "1_cfg.json").read_text())
        (tmp_path / "1_cfg.json").write_text(json.dumps({**cfg, "site": "resid"}))
    with pytest.raises(SAELoadError, match=r"1(_cfg\.json|\.pt)"):
        nanda_sae_from_files(tmp_path / "1.pt", tmp_path / "1_cfg.json")


PAGES = ["pages/board_player.py", "pages/probe_viewer.py", "pages/logit_lens.py", "pages/sae_browser.py", "pages/patching_lab.py"]


@pytest.fixture(scope="module")
def gelu_hub(tmp_path_factory):
    """A hub cache with the gelu-1l layout (a small random model), Nanda's SAE 25 fitted to its MLP
    width, and the c4-code-20k dataset: what the pages read for gelu-1l."""
    import huggingface_hub.constants as hub_constants
    import pyarrow as pa
    import pyarrow.parquet as pq

    cache = tmp_path_factory.mktemp("gelu_hub")
    write_gelu_cache(cache, reference_model())
    write_nanda_sae(snapshot(cache, NANDA_SAE_REPO), 25, d_in=GELU_CONFIG["d_mlp"], d_sae=128)
    data = cache / "datasets--NeelNanda--c4-code-20k" / "snapshots" / COMMIT / "data"
    data.mkdir(parents=True)
    pq.write_table(pa.table({"text": ["def f(x):\n    return x + 1  # the cat sat on the mat\n" * 3] * 40}), data / "train-00000.parquet")
    (data.parents[2] / "refs").mkdir()
    (data.parents[2] / "refs" / "main").write_text(COMMIT)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
        mp.setattr(hub_constants, "HF_HUB_OFFLINE", True)
        mp.setenv("HF_HUB_OFFLINE", "1")
        from ui.caches import cached_model

        cached_model.clear()
        yield cache
        cached_model.clear()


@pytest.mark.parametrize("page", PAGES)
def test_every_page_serves_gelu_1l_from_the_hub_cache(gelu_hub, page):
    from tests.test_board_player_page import open_page

    at = open_page(page, model="gelu-1l", prompt="def f(x):\n    return x")
    assert not at.error, [e.value for e in at.error]
    if page == "pages/sae_browser.py":
        assert at.selectbox(key="text_sae").value == "nanda-run1"
        assert any("Nanda-format SAE" in c.value for c in at.caption)
        at.text_input(key="text_feature_search").set_value("def").run()
        assert not at.exception


@pytest.mark.parametrize("name", ["gelu-2l", "gpt2-small"])
def test_other_transformer_lens_text_models_say_they_need_the_network(offline_cache, name):
    spec = next(s for s in registry.list_models() if s.name == name)
    assert spec.kind == "text" and spec.needs_network
    with pytest.raises(ModelLoadError, match="needs network access"):
        registry.load_model(name, cache_dir=offline_cache)
