"""Published board-game SAEs: dictionary_learning trainers in their zips and SAELens folders from a
hub cache, each equal to an independent reference of its formula."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
import torch

from core.interp.sae.published import dl_sae_from_zip, dl_trainers_in_zip, fit_problem, load_saelens_from_hub
from core.interp.sae.store import SAELoadError
from tests.rounding import product_bound

D_IN, D_SAE = 32, 96
G = torch.Generator().manual_seed(0)


def rand(*shape, scale=0.3):
    return torch.randn(*shape, generator=G) * scale


def dl_state(cls: str, with_k: bool = True, d_in: int = D_IN) -> dict:
    if cls == "AutoEncoder":
        return {"bias": rand(d_in), "encoder.weight": rand(D_SAE, d_in), "encoder.bias": rand(D_SAE, scale=0.1), "decoder.weight": rand(d_in, D_SAE)}
    if cls == "GatedAutoEncoder":
        return {"decoder_bias": rand(D_IN), "encoder.weight": rand(D_SAE, D_IN), "r_mag": rand(D_SAE, scale=0.2), "gate_bias": rand(D_SAE, scale=0.1), "mag_bias": rand(D_SAE, scale=0.1), "decoder.weight": rand(D_IN, D_SAE)}
    state = {"encoder.weight": rand(D_SAE, D_IN), "encoder.bias": rand(D_SAE, scale=0.1), "decoder.weight": rand(D_IN, D_SAE), "b_dec": rand(D_IN)}
    if with_k:
        state |= {"k": torch.tensor(7, dtype=torch.int), "threshold": torch.tensor(0.25)}
    return state


def reference(cls: str, state: dict, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """dictionary_learning's encode and decode, written out from its classes."""
    if cls == "AutoEncoder":
        f = torch.relu((x - state["bias"]) @ state["encoder.weight"].T + state["encoder.bias"])
        return f, f @ state["decoder.weight"].T + state["bias"]
    if cls == "GatedAutoEncoder":
        x_enc = (x - state["decoder_bias"]) @ state["encoder.weight"].T
        f = (x_enc + state["gate_bias"] > 0).float() * torch.relu(state["r_mag"].exp() * x_enc + state["mag_bias"])
        return f, f @ state["decoder.weight"].T + state["decoder_bias"]
    post = torch.relu((x - state["b_dec"]) @ state["encoder.weight"].T + state["encoder.bias"])
    top = post.topk(7, dim=-1)
    f = torch.zeros_like(post).scatter_(-1, top.indices, top.values)
    return f, f @ state["decoder.weight"].T + state["b_dec"]


def sae_bounds(sae, x: torch.Tensor, f: torch.Tensor) -> tuple[float, float]:
    """How far our encoder's and decoder's float32 results may be from a formula's own float32
    evaluation: the rounding of their products (``tests.rounding.product_bound``) with every
    operand at its magnitude (the input plus the decoder bias it may subtract first; a gated
    SAE's magnitude path scales the product by ``exp(r_mag)``). A wrong layout or a missing bias
    moves features by 1e-2 or more."""
    w_enc = sae.W_enc.detach()
    gain = float(sae.r_mag.detach().exp().max()) if hasattr(sae, "r_mag") else 1.0
    encode = gain * product_bound(x.abs() + sae.b_dec.detach().abs(), w_enc)
    return encode, product_bound(f.detach(), sae.W_dec.detach())


def write_zip(path: Path, trainers: dict[str, tuple[dict, dict]]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for folder, (state, config) in trainers.items():
            buffer = io.BytesIO()
            torch.save(state, buffer)
            zf.writestr(f"{folder}/ae.pt", buffer.getvalue())
            zf.writestr(f"{folder}/config.json", json.dumps(config))
    return path


def dl_config(cls: str, k: int | None = 7, layer: int = 5, d_in: int = D_IN) -> dict:
    trainer = {"dict_class": cls, "activation_dim": d_in, "dict_size": D_SAE, "layer": layer, "lm_name": "adamkarvonen/8LayerChessGPT2", "submodule_name": "resid_post_layer_5", "trainer_class": "x"}
    if k is not None:
        trainer["k"] = k
    return {"trainer": trainer, "buffer": {"d_submodule": d_in, "ctx_len": 256}}


CASES = {
    "AutoEncoder": ("AutoEncoder", True),
    "GatedAutoEncoder": ("GatedAutoEncoder", True),
    "AutoEncoderTopK 2025 (k buffer)": ("AutoEncoderTopK", True),
    "AutoEncoderTopK 2024 (k in config only)": ("AutoEncoderTopK", False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_dictionary_learning_trainers_in_a_zip_encode_and_decode_as_their_formulas(tmp_path, case):
    cls, with_k = CASES[case]
    state = dl_state(cls, with_k)
    path = write_zip(tmp_path / "chess-trained_model-layer_5-2024-05-23.zip", {
        "group/group-standard/trainer0": (state, dl_config(cls)),
        "group/group-standard/trainer_1": (dl_state("AutoEncoder"), dl_config("AutoEncoder")),
    })
    assert dl_trainers_in_zip(path) == ["group/group-standard/trainer0", "group/group-standard/trainer_1"]
    published = dl_sae_from_zip(path, "group/group-standard/trainer0")
    assert published.hook == "blocks.5.hook_resid_post" and published.model_name == "adamkarvonen/8LayerChessGPT2"
    x = rand(40, D_IN, scale=1.0)
    f_ref, x_ref = reference(cls, state, x)
    f = published.sae.encode(x)
    encode_bound, decode_bound = sae_bounds(published.sae, x, f)  # float32 rounding of the products
    assert (f - f_ref).abs().max().item() <= encode_bound and (f > 0).any()
    assert (published.sae.decode(f) - x_ref).abs().max().item() <= decode_bound + product_bound(f_ref.detach(), published.sae.W_dec.detach())
    assert not list(tmp_path.glob("**/ae.pt"))  # nothing was extracted


@pytest.mark.parametrize("damage", ["not a zip", "no such trainer", "bad json", "truncated ae.pt", "wrong width", "unknown class", "no k", "missing bias"])
def test_damaged_dictionary_learning_files_are_refused_naming_the_file(tmp_path, damage):
    state, config = dl_state("AutoEncoderTopK", with_k=False), dl_config("AutoEncoderTopK")
    folder = "g/g-topk/trainer0"
    path = tmp_path / "saes.zip"
    if damage == "not a zip":
        path.write_bytes(b"PK\x03\x04 not really")
    elif damage in ("bad json", "truncated ae.pt"):
        buffer = io.BytesIO()
        torch.save(state, buffer)
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr(f"{folder}/ae.pt", buffer.getvalue()[:50] if damage == "truncated ae.pt" else buffer.getvalue())
            zf.writestr(f"{folder}/config.json", "{oops" if damage == "bad json" else json.dumps(config))
    else:
        if damage == "wrong width":
            config["trainer"]["activation_dim"] = 999
        elif damage == "unknown class":
            config["trainer"]["dict_class"] = "CrossCoder"
        elif damage == "no k":
            config["trainer"].pop("k")
        elif damage == "missing bias":
            state.pop("b_dec")
        write_zip(path, {folder: (state, config)})
    name = "other/trainer9" if damage == "no such trainer" else folder
    with pytest.raises(SAELoadError, match=r"saes\.zip"):
        dl_sae_from_zip(path, name)


def test_a_published_sae_that_does_not_fit_the_model_is_refused_with_the_reason(tiny_bundle, tmp_path):
    from core.models.registry import load_model

    handle = load_model(str(tiny_bundle))  # 2 layers, d_model 32
    fits = write_zip(tmp_path / "a.zip", {"t/trainer0": (dl_state("AutoEncoder"), dl_config("AutoEncoder", layer=1))})
    assert fit_problem(dl_sae_from_zip(fits, "t/trainer0"), handle) is None
    deep = write_zip(tmp_path / "b.zip", {"t/trainer0": (dl_state("AutoEncoder"), dl_config("AutoEncoder", layer=5))})
    assert "2 layers" in fit_problem(dl_sae_from_zip(deep, "t/trainer0"), handle)
    wide = write_zip(tmp_path / "c.zip", {"t/trainer0": (dl_state("AutoEncoder", d_in=48), dl_config("AutoEncoder", layer=1, d_in=48))})
    assert "48 dimensions" in fit_problem(dl_sae_from_zip(wide, "t/trainer0"), handle)


@pytest.mark.parametrize("architecture", ["standard", "gated", "jumprelu", "topk"])
def test_a_sae_lens_folder_loads_from_the_hub_cache_and_encodes_as_its_formula(tmp_path, monkeypatch, architecture):
    import sae_lens

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--callummcdougall--arena-demos-othellogpt"
    folder = repo / "snapshots" / commit / "blocks.5.mlp.hook_post-v1"
    classes = {"standard": ("StandardSAE", "StandardSAEConfig", {}), "gated": ("GatedSAE", "GatedSAEConfig", {}), "jumprelu": ("JumpReLUSAE", "JumpReLUSAEConfig", {}), "topk": ("TopKSAE", "TopKSAEConfig", {"k": 5})}
    cls, cfg_cls, extra = classes[architecture]
    sae = getattr(sae_lens, cls)(getattr(sae_lens, cfg_cls)(d_in=D_IN, d_sae=D_SAE, **extra))
    with torch.no_grad():
        for p in sae.parameters():
            p.copy_(rand(*p.shape))
        if architecture == "jumprelu":
            sae.threshold.copy_(rand(D_SAE, scale=0.1).abs())
    sae.cfg.metadata.hook_name = "blocks.5.mlp.hook_post"
    sae.save_model(str(folder))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    published = load_saelens_from_hub("callummcdougall/arena-demos-othellogpt", "blocks.5.mlp.hook_post-v1", cache_dir=tmp_path)
    assert published.hook == "blocks.5.mlp.hook_post"
    x = rand(30, D_IN, scale=1.0)
    s = {n: p.detach() for n, p in sae.named_parameters()} | {n: b for n, b in sae.named_buffers()}
    pre = (x - s["b_dec"]) @ s["W_enc"]
    if architecture == "standard":
        expected = torch.relu(pre + s["b_enc"])
    elif architecture == "gated":
        expected = (pre + s["b_gate"] > 0).float() * torch.relu(pre * s["r_mag"].exp() + s["b_mag"])
    elif architecture == "jumprelu":
        h = pre + s["b_enc"]
        expected = h * (h > s["threshold"]).float()
    else:
        h = torch.relu(pre + s["b_enc"])
        top = h.topk(5, dim=-1)
        expected = torch.zeros_like(h).scatter_(-1, top.indices, top.values)
    f = published.sae.encode(x)
    encode_bound, decode_bound = sae_bounds(published.sae, x, f)  # float32 rounding of the products
    assert (f - expected).abs().max().item() <= encode_bound and (f > 0).any()
    assert (published.sae.decode(f) - (f @ s["W_dec"] + s["b_dec"])).abs().max().item() <= decode_bound
    with pytest.raises(SAELoadError, match="not in the local hub cache"):
        load_saelens_from_hub("callummcdougall/arena-demos-othellogpt", "blocks.6.mlp.hook_post-v1", cache_dir=tmp_path / "empty")


def test_folding_the_centring_encodes_x_as_the_sae_encodes_x_minus_its_mean():
    from core.interp.sae.published import PublishedSAE, fold_centring, prepare_for
    from tests.test_published_saes import dl_sae_from_zip  # noqa: F401 - the same module

    for cls in ("AutoEncoder", "GatedAutoEncoder", "AutoEncoderTopK"):
        from core.interp.sae.published import dl_sae_from_state

        state, config = dl_state(cls), dl_config(cls)
        config["trainer"]["lm_name"] = "Baidicoot/Othello-GPT-Transformer-Lens"
        plain = dl_sae_from_state({k: v.clone() for k, v in state.items()}, config, "x")
        prepared = prepare_for(dl_sae_from_state(state, config, "x"))
        assert "centred" in prepared.note
        x = rand(25, D_IN, scale=2.0) + 3.0  # a large mean, as a residual stream without centred weights has
        expected = plain.sae.encode(x - x.mean(-1, keepdim=True))
        # The folded weights take x with its mean: the products' rounding is that of |x|, not of
        # the centred x (``sae_bounds``), twice over (the fold itself is a float32 product too).
        bound = 2 * sae_bounds(prepared.sae, x, expected)[0]
        assert (prepared.sae.encode(x) - expected).abs().max().item() <= bound, cls
    chess = dl_sae_from_state(dl_state("AutoEncoder"), dl_config("AutoEncoder"), "y")
    assert prepare_for(chess) is chess  # the chess GPT-2 copy is read unprocessed: nothing to apply
    del PublishedSAE, fold_centring


@pytest.fixture()
def othello_hub_with_saes(tmp_path, monkeypatch):
    """The published Othello-GPT layout (a small random model) and Karvonen et al.'s SAE zip in an
    offline hub cache."""
    import huggingface_hub.constants as hub_constants

    from tests.test_models import legacy_model, write_hub_cache

    write_hub_cache(tmp_path, legacy_model().state_dict())  # 2 layers, d_model 32
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--adamkarvonen--othello_saes"
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    good = dl_config("AutoEncoder", layer=1) | {}
    good["trainer"]["lm_name"] = "Baidicoot/Othello-GPT-Transformer-Lens"
    bad = dl_config("AutoEncoder", layer=1, d_in=48)
    bad["trainer"]["lm_name"] = "Baidicoot/Othello-GPT-Transformer-Lens"
    write_zip(repo / "snapshots" / commit / "othello-trained_model-layer_5-2024-05-23.zip", {
        "othello_all_layers/othello-standard/trainer0": (dl_state("AutoEncoder"), good),
        "othello_all_layers/othello-standard/trainer1": (dl_state("AutoEncoder", d_in=48), bad),
    })
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from ui.caches import cached_model
    from ui.sae_caches import published_sae_refs

    cached_model.clear()
    published_sae_refs.clear()
    yield tmp_path
    cached_model.clear()
    published_sae_refs.clear()


def test_the_sae_browser_opens_a_published_sae_from_the_hub_cache_and_refuses_one_that_does_not_fit(othello_hub_with_saes):
    from core.interp.sae.published import discover
    from tests.test_board_player_page import open_page

    refs = discover("othello-gpt-synthetic")
    assert [r.label for r in refs] == ["othello-trained_model-layer_5-2024-05-23/trainer0", "othello-trained_model-layer_5-2024-05-23/trainer1"]
    at = open_page("pages/sae_browser.py", model="othello-gpt-synthetic", moves="d3c5", sae=refs[0].label)
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="sae_pick").value == refs[0].label
    assert any("AutoEncoder \\(96 features" in c.value and "centred residual stream" in c.value for c in at.caption)
    assert len(at.get("plotly_chart")) >= 2  # the feature table's histogram and a feature's boards
    at = open_page("pages/sae_browser.py", model="othello-gpt-synthetic", moves="d3c5", sae=refs[1].label)
    assert any("48 dimensions" in e.value for e in at.error) and not at.exception


def test_every_bundled_board_game_sae_card_has_the_papers_metrics_for_every_unit_kind():
    from core.interp.sae.store import list_saes
    from core.models.registry import list_models

    cards = [(spec.name, e.name, e.card) for spec in list_models() if spec.source == "bundled" and spec.kind == "game" for e in list_saes(spec.name)]
    assert cards
    for model, name, card in cards:
        board = card["metrics"]["board"]
        assert set(board) == {"sae_features", "mlp_neurons", "random_init_neurons"}, (model, name)
        for unit, scores in board.items():
            assert all(isinstance(scores.get(k), float) for k in ("coverage", "board_reconstruction_paper", "board_reconstruction")), (model, name, unit, scores)
            sets = scores.get("sets") or {}
            assert len(sets) >= 4 and all(isinstance(v["coverage"], float) for v in sets.values()), (model, name, unit)  # the paper's property sets
            assert any("blanks masked" in s and isinstance(v["board_reconstruction"], float) for s, v in sets.items()), (model, name, unit)


def test_a_published_sae_is_measured_on_demand_with_the_papers_metrics(othello_hub_with_saes):
    from core.interp.sae.published import discover
    from tests.test_board_player_page import open_page

    label = discover("othello-gpt-synthetic")[0].label
    at = open_page("pages/sae_browser.py", model="othello-gpt-synthetic", moves="d3c5", sae=label)
    assert any("Karvonen et al. 2024 report" in c.value for c in at.caption)
    next(b for b in at.button if b.key == "measure_sae").click().run()
    assert not at.exception and not at.error
    board = at.session_state["measured_sae_metrics"][("othello-gpt-synthetic", label, "random")]["board"]
    assert all(isinstance(v["board_reconstruction_paper"], float) for v in board.values())
    assert any(m.label == "FVU" for m in at.metric)
