"""Text models: the corpus readers, the trainer, the bundled model and its SAE, measured against
independent references (SAELens's evals, TransformerLens's patching, a hand-written splice)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from core.interp.patching import sweeps as PT
from core.interp.sae import token_sae as TS
from core.interp.lens import token_lens as TV
from core.interp.shared import text_run
from core.interp.sae.store import list_saes, load_sae
from core.models.registry import list_models, load_model
from core.text import corpus as C
from core.text.shard import bundled_shard, shard_windows
from core.text.tokenizer import save_tokenizer, train_bpe
from core.train import next_token as NT

from tests.rounding import forward_bound, metric_bound, parts_bound, product_bound

ROOT = Path(__file__).resolve().parents[1]
TEXT_MODEL = next((s.name for s in list_models() if s.source == "bundled" and s.kind == "text"), None)
needs_model = pytest.mark.skipif(TEXT_MODEL is None, reason="no bundled text model")


@pytest.fixture(scope="module")
def handle():
    return load_model(TEXT_MODEL)


@pytest.fixture(scope="module")
def sae_entry():
    entries = list_saes(TEXT_MODEL) if TEXT_MODEL else []
    if not entries:
        pytest.skip("no bundled text SAE")
    return entries[0]


# -- corpora ----------------------------------------------------------------------------------------


def test_the_stdlib_corpus_splits_by_file_name_and_holds_prose_and_code():
    files = C.stdlib_files()
    names = [n for n, _ in files]
    assert "pydoc_data/topics.py" in names and not any("/test/" in f"/{n}" for n in names)
    held = [n for n in names if C.held_out(n)]
    assert 0.05 < len(held) / len(names) < 0.16
    assert C.held_out("a.py") == C.held_out("a.py")  # a fixed hash, not a random draw


def test_local_sources_read_as_documents_with_limits_and_named_damage(tmp_path):
    (tmp_path / "a.txt").write_text("hello world")
    (tmp_path / "b.jsonl").write_text(json.dumps({"text": "one"}) + "\n\n" + json.dumps({"text": "two"}) + "\n")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["p1", "p2", None]}), tmp_path / "c.parquet")
    docs = C.read_documents(tmp_path)
    assert [d.text for d in docs] == ["hello world", "one", "two", "p1", "p2"]
    with pytest.raises(C.CorpusError, match="more than 5"):
        C.read_documents(tmp_path, limit_bytes=5)
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{broken\n')
    with pytest.raises(C.CorpusError, match=r"bad\.jsonl:2"):
        C.read_documents(tmp_path / "bad.jsonl")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(C.CorpusError, match=r"bad\.parquet"):
        C.read_documents(tmp_path / "bad.parquet")
    with pytest.raises(C.CorpusError, match="no such file"):
        C.read_documents(tmp_path / "missing")


def test_a_hub_dataset_reads_from_the_cache_offline(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "datasets--NeelNanda--c4-code-20k"
    (repo / "snapshots" / commit / "data").mkdir(parents=True)
    pq.write_table(pa.table({"text": ["def f(): pass", "the cat"]}), repo / "snapshots" / commit / "data" / "train-00000.parquet")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    docs = C.hub_dataset_documents("NeelNanda/c4-code-20k", cache_dir=tmp_path)
    assert [d.text for d in docs] == ["def f(): pass", "the cat"]
    with pytest.raises(C.CorpusError, match="not in the local hub cache"):
        C.hub_dataset_documents("NeelNanda/pile-10k", cache_dir=tmp_path)


def test_tokens_are_cached_by_the_content_of_documents_and_tokenizer(tmp_path):
    tok = train_bpe(["abc abd abe " * 20], 300)
    docs = [C.Document("x", "abc abd"), C.Document("y", "abe")]
    first = C.cached_tokens(tok, docs, root=tmp_path)
    assert list(first) == tok.encode("abc abd") + [tok.end_of_text] + tok.encode("abe") + [tok.end_of_text]
    assert len(list(tmp_path.glob("*.npy"))) == 1
    assert (C.cached_tokens(tok, docs, root=tmp_path) == first).all() and len(list(tmp_path.glob("*.npy"))) == 1
    C.cached_tokens(tok, [C.Document("x", "abc")], root=tmp_path)
    assert len(list(tmp_path.glob("*.npy"))) == 2


# -- the trainer -------------------------------------------------------------------------------------


def test_ngram_baselines_match_a_hand_count():
    """Cross-entropies of n-gram counts, float64 on both sides (``approx``'s 1e-6 relative)."""
    train = np.array([1, 2, 1, 2, 1, 3])
    windows = torch.tensor([[1, 2, 1]])
    out = NT.ngram_baselines(train, windows, vocab=4)
    uni = (np.bincount(train, minlength=4) + 1) / (6 + 4)
    assert out["unigram_ce"] == pytest.approx(-np.log(uni[[2, 1]]).mean())
    lam = out["bigram_lambda"]
    p_21 = 2 / 3  # after 1: 2, 2, 3
    p_12 = 2 / 2  # after 2: 1, 1
    expected = -(np.log(lam * p_21 + (1 - lam) * uni[2]) + np.log(lam * p_12 + (1 - lam) * uni[1])) / 2
    assert out["bigram_ce"] == pytest.approx(expected)


def test_a_resumed_text_run_equals_an_unbroken_one(tmp_path, monkeypatch):
    docs = [C.Document(f"f{i}.py", f"def f{i}(x):\n    return x * {i} + {i * i}\n" * 20) for i in range(30)]
    monkeypatch.setattr(NT, "corpus_documents", lambda corpus: (docs[:25], docs[25:]))
    cfg = NT.TextTrainConfig(vocab_size=300, d_model=32, n_heads=2, d_mlp=64, n_ctx=16, batch_size=4, steps=6, eval_every=3, eval_tokens=256, warmup_steps=2, bf16=False, device="cpu")
    whole = NT.TextTrainer(cfg, tmp_path / "a")
    whole.train()
    part = NT.TextTrainer(cfg, tmp_path / "b")
    part.train(until_step=3)
    resumed = NT.TextTrainer(NT.TextTrainConfig(), tmp_path / "b")
    assert resumed.state.step == 3
    resumed.train()
    for (k, a), (_, b) in zip(whole.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), k
    assert [h["held_out_ce"] for h in whole.state.history] == [h["held_out_ce"] for h in resumed.state.history]
    assert whole.state.history[-1]["held_out_ce"] < whole.state.history[0]["held_out_ce"] + 1e-9 or len(whole.state.history) == 2


# -- the bundled model -------------------------------------------------------------------------------


@needs_model
def test_the_bundled_text_model_beats_the_bigram_baseline_on_held_out_text(handle):
    """The card's held-out loss measured again on another CPU: a mean over ~10,000 tokens of
    float32 log-probabilities, each within ~1e-6 of the card's; the mean moves by far less than
    1e-4, and a changed model or corpus moves it by 1e-2 or more."""
    card = json.loads((ROOT / "assets" / "models" / TEXT_MODEL / "card.json").read_text())
    ev = card["eval"]
    assert ev["held_out_ce"] < ev["bigram_ce"] < ev["unigram_ce"]
    shard = bundled_shard(handle)
    windows = NT.eval_windows(shard, ev["window"], ev["targets"])
    assert len(windows) == ev["held_out_windows"]
    assert NT.window_ce(handle.forward, windows) == pytest.approx(ev["held_out_ce"], abs=1e-4)  # the card's figure, measured again


@needs_model
def test_the_tokenizer_round_trips_text_and_spans_join_to_it(handle):
    text = 'def f(x):\n    """Dörte’s ünïcode — 漢字."""\n\treturn x  # 🎉\n'
    ids = handle.tokenizer.encode(text)
    assert handle.tokenizer.decode(ids) == text and "".join(handle.tokenizer.spans(ids)) == text
    assert max(ids) < handle.cfg.d_vocab and handle.tokenizer.end_of_text == 0


@needs_model
def test_the_next_token_table_equals_the_model_logits(handle):
    """The table's losses are the log-softmax of the same logits: a few u of values of order 10
    (1e-5)."""
    tokens = torch.tensor([0] + handle.tokenizer.encode("import os\nimport sys\nimport "))
    logits = handle.forward(tokens[None])[0]
    table = text_run.next_tokens(logits, tokens, k=5)
    logp = logits.log_softmax(-1)
    assert (table.top_ids[:, 0] == logp.argmax(-1).numpy()).all()
    assert table.loss[:-1] == pytest.approx((-logp[:-1].gather(-1, tokens[1:, None])[:, 0]).numpy(), abs=1e-5)
    assert np.isnan(table.loss[-1]) and table.actual[-1] == -1
    with pytest.raises(ValueError, match="more than the model reads"):
        text_run.check_tokens(torch.zeros(handle.cfg.n_ctx + 1, dtype=torch.long), handle)


@needs_model
def test_text_patching_equals_transformer_lens_patching(handle):
    from transformer_lens import patching as tl_patching

    tok = handle.tokenizer
    clean = torch.tensor([[0] + tok.encode("x = 1\ny = 2\nprint(x")])
    corrupted = torch.tensor([[0] + tok.encode("x = 1\ny = 2\nprint(y")])
    assert clean.shape == corrupted.shape
    metric = PT.next_move_metric("logit difference", tok.encode(")")[0], tok.encode(",")[0])
    ours = PT.act_patch_block_every(handle, corrupted, clean, metric)
    _, clean_cache = handle.model.run_with_cache(clean)
    theirs = tl_patching.get_act_patch_block_every(handle.model, corrupted, clean_cache, metric)
    bound = metric_bound(handle.model, clean, metric)  # float32 rounding of the metric (tests/rounding.py)
    assert (ours - theirs).abs().max().item() <= bound
    heads = PT.act_patch_head_all_pos_every(handle, corrupted, clean, metric)
    assert (heads - tl_patching.get_act_patch_attn_head_all_pos_every(handle.model, corrupted, clean_cache, metric)).abs().max().item() <= bound


@needs_model
def test_the_lens_ends_at_the_model_and_dla_adds_up(handle):
    """The attributions add up to the last logits within the logits' float32 rounding plus that
    of summing the parts in another order (tests/rounding.py)."""
    tokens = torch.tensor([0] + handle.tokenizer.encode("for i in range(10):\n    print(i"))
    run = text_run.run_tokens(handle, tokens)
    labels, ids, probs = TV.lens_top_tokens(handle, run, k=3, incl_mid=True)
    assert labels[0] == "embed" and len(labels) == 1 + 2 * handle.cfg.n_layers
    assert (ids[-1, :, 0] == run.logits[0].argmax(-1).numpy()).all()
    attr = TV.attribute_tokens(handle, run, len(tokens) - 1)
    assert (attr.dla.sum(0) + attr.bias - run.logits[0, -1]).abs().max().item() <= forward_bound(handle.model, tokens[None]) + parts_bound(attr.dla)


# -- the bundled SAE ---------------------------------------------------------------------------------


@needs_model
def test_the_bundled_text_sae_meets_its_targets_and_its_card(handle, sae_entry):
    m = sae_entry.card["metrics"]
    assert m["l0"] <= 40 and m["ce_recovered_zero"] >= 0.85 and 0 <= m["fvu"] < 1
    assert sae_entry.hook == "blocks.0.mlp.hook_post"


@needs_model
def test_text_sae_metrics_equal_sae_lens_evals(handle, sae_entry):
    """Our metrics and SAELens's evals are means over the same tokens of float32 quantities
    computed in another order: a few u relative each, far below 1e-4 for L0 (a count), FVU and
    losses of order 1-10."""
    from sae_lens.evals import get_recons_loss, get_sparsity_and_variance_metrics
    from sae_lens.training.activation_scaler import ActivationScaler

    sae = load_sae(sae_entry.folder, d_in=handle.hook_width(sae_entry.hook))
    windows = torch.from_numpy(shard_windows(bundled_shard(handle), handle.cfg.n_ctx, 24))
    ours = TS.window_sae_metrics(handle, sae, sae_entry.hook, windows)

    class Store:  # SAELens reads batches of tokens from an activation store; these are ours
        def __init__(self):
            self.batches = iter(windows.split(8))

        def get_batch_tokens(self, n):
            return next(self.batches)

    sae.cfg.metadata.hook_name = sae_entry.hook
    scaler = ActivationScaler()
    theirs, _ = get_sparsity_and_variance_metrics(sae, handle.model, Store(), scaler, n_batches=3, compute_l2_norms=False, compute_sparsity_metrics=True,
                                                  compute_variance_metrics=True, compute_featurewise_density_statistics=False, eval_batch_size_prompts=8, model_kwargs={})
    assert ours["l0"] == pytest.approx(theirs["l0"], abs=1e-4)
    assert ours["fvu"] == pytest.approx(1 - theirs["explained_variance"], abs=1e-4)
    recons = get_recons_loss(sae, handle.model, scaler, windows, compute_kl=False, compute_ce_loss=True)
    clean, with_sae, zero = (float(recons[k].mean()) for k in ("ce_loss_without_sae", "ce_loss_with_sae", "ce_loss_with_ablation"))
    assert ours["ce_clean"] == pytest.approx(clean, abs=1e-4) and ours["ce_sae"] == pytest.approx(with_sae, abs=1e-4)
    assert ours["ce_recovered_zero"] == pytest.approx((zero - with_sae) / (zero - clean), abs=1e-4)


@needs_model
def test_spliced_logits_equal_a_hand_written_splice(handle, sae_entry):
    """The splice equals a hand-written hook, the clean logits the model's, the features the
    SAE's encoder: the same computations batched differently, within float32 rounding of the
    logits (``forward_bound``) and of the encoder's product (``product_bound``)."""
    sae = load_sae(sae_entry.folder, d_in=handle.hook_width(sae_entry.hook))
    tokens = torch.tensor([0] + handle.tokenizer.encode("class Point:\n    def __init__(self, x, y):\n        self.x = x\n"))

    def by_hand(act, hook):
        return sae.decode(sae.encode(act))

    with torch.no_grad():
        expected = handle.model.run_with_hooks(tokens[None], fwd_hooks=[(sae_entry.hook, by_hand)])[0]
    comparison = TS.splice_comparison(handle, sae, sae_entry.hook, tokens)
    bound = forward_bound(handle.model, tokens[None])
    assert (comparison.spliced_logits - expected).abs().max().item() <= bound
    assert (comparison.clean_logits - handle.model(tokens[None])[0]).abs().max().item() <= bound
    acts = handle.activations(tokens[None], [sae_entry.hook])[sae_entry.hook][0]
    expected_features = sae.encode(acts)
    assert (comparison.features - expected_features).abs().max().item() <= product_bound(acts - sae.b_dec, sae.W_enc.detach())
    assert not handle.model.hook_dict[sae_entry.hook].fwd_hooks  # the shared model is left unhooked


@needs_model
def test_the_token_index_holds_every_activation_of_its_windows(handle, sae_entry):
    """The index holds the encoder's float32 values for the same windows, copied (1e-6 at
    activations of order 1 is ~16 u); the density is a count (``approx``'s 1e-6 relative)."""
    sae = load_sae(sae_entry.folder, d_in=handle.hook_width(sae_entry.hook))
    windows = shard_windows(bundled_shard(handle), 64, 6)
    index = TS.build_token_index(handle, sae, sae_entry.hook, windows, batch=4)
    feats = sae.encode(handle.activations(torch.from_numpy(windows), [sae_entry.hook])[sae_entry.hook].reshape(-1, sae.cfg.d_in))
    live = int((feats > 0).sum(0).argmax())  # the feature that fires most often here
    positions, values = index.activations(live)
    assert sorted(positions.tolist()) == torch.nonzero(feats[:, live] > 0)[:, 0].tolist()
    assert values == pytest.approx(np.sort(feats[feats[:, live] > 0, live].numpy())[::-1], abs=1e-6)
    assert index.density.sum() * index.n_positions == pytest.approx(float((feats > 0).sum()))
    contexts = TS.top_contexts(index, live, k=5)
    assert contexts[0][2] == pytest.approx(float(values[0]))
    token = int(windows.reshape(-1)[positions[0]])
    assert live in [u for u, _, _ in index.units_on_token(token, k=sae.cfg.d_sae)]


def test_nothing_in_core_interp_names_a_model_kind():
    pattern = re.compile(r"\b(handle|info|spec|model|cfg)\.kind\b|[\"'](text|game)[\"']\s*(==|!=|in\b)|(==|!=)\s*[\"'](text|game)[\"']")
    offenders = [f"{f.name}: {m.group(0)}" for f in sorted((ROOT / "core" / "interp").glob("*.py")) for m in pattern.finditer(f.read_text())]
    assert not offenders, offenders
    assert pattern.search('if handle.kind == "text":')  # the pattern does catch it


@needs_model
@pytest.mark.parametrize("damage", ["no tokenizer", "tokenizer replaced", "tokenizer garbage", "shard replaced", "shard ids out of range"])
def test_a_damaged_text_bundle_is_refused_with_the_file_named(tmp_path, damage):
    import shutil

    from core.models.errors import ModelLoadError
    from core.text.shard import ShardError, read_shard

    folder = tmp_path / "copy"
    shutil.copytree(ROOT / "assets" / "models" / TEXT_MODEL, folder)
    config = json.loads((folder / "config.json").read_text())
    if damage == "no tokenizer":
        (folder / "tokenizer.json").unlink()
    elif damage == "tokenizer replaced":
        save_tokenizer(train_bpe(["other text " * 50], 300), folder / "tokenizer.json")
    elif damage == "tokenizer garbage":
        (folder / "tokenizer.json").write_text("{not json")
        config["files_sha256"].pop("tokenizer.json")
        (folder / "config.json").write_text(json.dumps(config))
    if damage.startswith("tokenizer") or damage == "no tokenizer":
        with pytest.raises(ModelLoadError, match="tokenizer.json"):
            load_model(str(folder))
        return
    from safetensors.torch import save_file

    bad = torch.full((10,), 10**6 if damage == "shard ids out of range" else 1, dtype=torch.int32)
    save_file({"tokens": bad}, str(folder / "heldout_tokens.safetensors"))
    expected = None if damage == "shard ids out of range" else config["files_sha256"]["heldout_tokens.safetensors"]
    with pytest.raises(ShardError, match="heldout_tokens.safetensors"):
        read_shard(folder / "heldout_tokens.safetensors", expected, vocab=4096)


@needs_model
def test_sae_lens_trains_a_text_sae_on_windows_of_the_corpus(handle):
    from core.train.sae import SAETrainConfig, TokenWindowStream, train_sae

    tokens = bundled_shard(handle)[:20_000]
    stream = TokenWindowStream(handle, "blocks.0.mlp.hook_post", tokens, batch_size=32, buffer_tokens=512, windows_per_refill=4, seed=1)
    batch = next(stream)
    assert batch.shape == (32, handle.cfg.d_mlp) and stream.generated == 4 * handle.cfg.n_ctx
    starts = np.random.default_rng(123).integers(0, len(tokens) - 128, size=4)  # a refill's windows, from its seed
    windows = torch.from_numpy(np.stack([tokens[s : s + 128] for s in starts]))
    expected = handle.activations(windows, ["blocks.0.mlp.hook_post"])["blocks.0.mlp.hook_post"].reshape(-1, handle.cfg.d_mlp)
    assert torch.equal(stream._activations(123), expected)
    cfg = SAETrainConfig(hook="blocks.0.mlp.hook_post", d_sae=64, k=4, total_tokens=4096, batch_size=128, buffer_tokens=2048, games_per_refill=8, bf16_activations=False)
    sae, stats = train_sae(handle, cfg, tokens=tokens)
    windows = torch.from_numpy(shard_windows(tokens, 64, 4))
    metrics = TS.window_sae_metrics(handle, sae, cfg.hook, windows)
    assert metrics["l0"] <= 4 and 0 < metrics["fvu"] < 1.5 and stats["activations_generated"] >= 4096
