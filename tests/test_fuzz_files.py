"""Fuzzing every kind of file the app reads: a damaged file ends in its loader's documented error
(naming the file), never another exception, a hang or a huge allocation."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from core.interp.probes import linear_probes as P
from core.interp.sae.store import SAELoadError, load_sae, save_sae
from core.models import registry
from core.models.errors import ModelLoadError
from core.train.next_move import CHECKPOINT_RECORD, CheckpointError, TrainConfig, Trainer
from tests.conftest import TINY
from tests.fuzzing import count, fuzz

JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**12), max_value=10**12), st.floats(allow_nan=True), st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6,
)
BYTE_DAMAGE = st.one_of(
    st.tuples(st.just("flip"), st.integers(min_value=0, max_value=10**9), st.integers(min_value=1, max_value=255)),
    st.tuples(st.just("truncate"), st.integers(min_value=0, max_value=10**9), st.just(0)),
    st.tuples(st.just("replace"), st.binary(max_size=64), st.just(0)),
)
FILE_CASES = 150


def damaged(data: bytes, how: tuple) -> bytes:
    kind, a, b = how
    if kind == "flip":
        if not data:
            return b"\x00"
        out = bytearray(data)
        out[a % len(out)] ^= b
        return bytes(out)
    if kind == "truncate":
        return data[: a % max(len(data), 1)]
    return a


def set_json(path: Path, keys: list[str], value) -> None:
    """Set ``keys`` (a path into the JSON object) to ``value``; NaN and inf as JSON allows them."""
    data = json.loads(path.read_text())
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {}) if isinstance(node.get(key), dict) or key not in node else node[key]
        if not isinstance(node, dict):
            return
    node[keys[-1]] = value
    path.write_text(json.dumps(data))


def fresh_copy(src: Path, dst: Path) -> Path:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    return dst


# -- bundled models ----------------------------------------------------------------------------

CONFIG_KEYS = st.sampled_from([["game"], ["board_size"], ["tokenizer"], ["tl_config"], ["sha256"], ["tl_config", "d_model"], ["tl_config", "n_layers"], ["tl_config", "d_vocab"], ["tl_config", "n_ctx"], ["tl_config", "n_heads"], ["tl_config", "d_head"], ["tl_config", "d_mlp"], ["tl_config", "act_fn"], ["tl_config", "normalization_type"]])


@fuzz(FILE_CASES)
@given(keys=CONFIG_KEYS, value=JSON_VALUES)
def test_bundle_config_values(tiny_bundle, tmp_path_factory, keys, value):
    count("files: bundle config.json values")
    folder = fresh_copy(tiny_bundle, tmp_path_factory.getbasetemp() / "fuzz_config")
    set_json(folder / "config.json", keys, value)
    try:
        registry._bundled_spec(folder)
        registry.load_model(str(folder))
    except ModelLoadError as exc:
        assert "config.json" in str(exc) or "model.safetensors" in str(exc), exc


@fuzz(FILE_CASES)
@given(name=st.sampled_from(["config.json", "card.json", "model.safetensors"]), how=BYTE_DAMAGE, keep_hash=st.booleans())
def test_bundle_file_bytes(tiny_bundle, tmp_path_factory, name, how, keep_hash):
    count("files: bundle bytes")
    folder = fresh_copy(tiny_bundle, tmp_path_factory.getbasetemp() / "fuzz_bundle")
    if not keep_hash:  # reach the safetensors parser, not only the hash check
        set_json(folder / "config.json", ["sha256"], None)
    path = folder / name
    path.write_bytes(damaged(path.read_bytes(), how))
    try:
        registry.load_model(str(folder))
    except ModelLoadError as exc:
        assert str(folder) in str(exc), exc


# -- probes ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def probe_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    probe = P.Probe(torch.randn(32, 6, 6, 3), torch.randn(6, 6, 3), {"target": "mine_theirs_empty", "hook": "blocks.0.hook_resid_post"})
    folder = tmp_path_factory.mktemp("probe")
    return P.save_probe(probe, folder / "blocks.0.hook_resid_post")


@fuzz(FILE_CASES)
@given(which=st.sampled_from(["safetensors", "json"]), how=BYTE_DAMAGE, keep_hash=st.booleans())
def test_probe_files(probe_file, tmp_path_factory, which, how, keep_hash):
    count("files: probes")
    folder = tmp_path_factory.getbasetemp() / "fuzz_probe"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(probe_file.parent, folder)
    stem = folder / "blocks.0.hook_resid_post"
    if not keep_hash:
        meta = json.loads(Path(f"{stem}.json").read_text())
        meta.pop("sha256")
        Path(f"{stem}.json").write_text(json.dumps(meta))
    path = Path(f"{stem}.{which}")
    path.write_bytes(damaged(path.read_bytes(), how))
    try:
        probe = P.load_probe(Path(f"{stem}.safetensors"), d_model=32, size=6)
    except P.ProbeLoadError as exc:
        assert "blocks.0.hook_resid_post" in str(exc), exc
        return
    assert probe.weight.shape == (32, 6, 6, 3)


# -- SAEs --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sae_folder(tmp_path_factory) -> Path:
    from core.train.sae import SAETrainConfig, make_training_sae

    folder = tmp_path_factory.mktemp("sae")
    save_sae(make_training_sae(SAETrainConfig(d_sae=16, k=4), 32), folder, {"hook": "blocks.0.hook_resid_post"})
    return folder


@fuzz(FILE_CASES)
@given(
    damage=st.one_of(
        st.tuples(st.sampled_from(["cfg.json", "card.json", "sae_weights.safetensors"]), BYTE_DAMAGE),
        st.tuples(st.just("cfg.json"), st.tuples(st.sampled_from(["k", "d_sae", "d_in", "architecture", "dtype", "apply_b_dec_to_input"]), JSON_VALUES)),
    ),
    keep_hash=st.booleans(),
)
def test_sae_files(sae_folder, tmp_path_factory, damage, keep_hash):
    count("files: SAEs")
    folder = fresh_copy(sae_folder, tmp_path_factory.getbasetemp() / "fuzz_sae")
    if not keep_hash:
        set_json(folder / "card.json", ["sha256"], None)
    name, how = damage
    if isinstance(how[0], str) and how[0] in ("flip", "truncate", "replace"):
        (folder / name).write_bytes(damaged((folder / name).read_bytes(), how))
    else:
        set_json(folder / name, [how[0]], how[1])
    try:
        sae = load_sae(folder, d_in=32)
    except SAELoadError as exc:
        assert str(folder) in str(exc), exc
        return
    assert sae.cfg.d_in == 32


# -- training checkpoints -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("run")
    Trainer(TrainConfig(size=6, seed=1, **{**TINY, "steps": 1}), run).train()
    return run


@fuzz(FILE_CASES)
@given(name=st.sampled_from([Trainer.CHECKPOINT, CHECKPOINT_RECORD]), how=BYTE_DAMAGE, keep_record=st.booleans())
def test_checkpoint_files(run_folder, tmp_path_factory, name, how, keep_record):
    count("files: training checkpoints")
    run = fresh_copy(run_folder, tmp_path_factory.getbasetemp() / "fuzz_run")
    if not keep_record:
        (run / CHECKPOINT_RECORD).unlink()
    path = run / name
    if path.exists():
        path.write_bytes(damaged(path.read_bytes(), how))
    try:
        trainer = Trainer(TrainConfig(), run)
    except CheckpointError as exc:
        assert "checkpoint" in str(exc), exc
        return
    assert trainer.state.step == 1


# -- published models in the hub cache -------------------------------------------------------------


@pytest.fixture(scope="module")
def gpt2_snapshot(tmp_path_factory) -> Path:
    from tests.gpt2_reference import GPT2
    from tests.test_chess_hub_models import write_gpt2_hub_cache

    torch.manual_seed(2)
    return write_gpt2_hub_cache(tmp_path_factory.mktemp("hub"), GPT2(vocab=77, n_positions=32, n_layer=1, n_head=2, n_embd=16))


@fuzz(FILE_CASES)
@given(
    damage=st.one_of(
        st.tuples(st.sampled_from(["config.json", "pytorch_model.bin", "tokenizer.json"]), BYTE_DAMAGE),
        st.tuples(st.just("config.json"), st.tuples(st.sampled_from(["n_embd", "n_head", "n_layer", "vocab_size", "n_positions", "n_inner", "activation_function"]), JSON_VALUES)),
    )
)
def test_hub_gpt2_files(gpt2_snapshot, tmp_path_factory, damage):
    from core.models.hf_gpt2 import load_hf_gpt2

    count("files: hub GPT-2 chess model")
    snapshot = fresh_copy(gpt2_snapshot, tmp_path_factory.getbasetemp() / "fuzz_gpt2")
    name, how = damage
    if how[0] in ("flip", "truncate", "replace"):
        (snapshot / name).write_bytes(damaged((snapshot / name).read_bytes(), how))
    else:
        set_json(snapshot / name, [how[0]], how[1])
    try:
        load_hf_gpt2(snapshot)
    except ModelLoadError as exc:
        assert str(snapshot) in str(exc) or "vocab" in str(exc), exc


@fuzz(FILE_CASES)
@given(name=st.sampled_from(["ckpt", "meta"]), how=BYTE_DAMAGE)
def test_hub_chessgpt_files(tmp_path_factory, name, how):
    from core.models.nanogpt import CHESS_GPT_FILE, CHESS_GPT_META
    from tests.nanogpt_reference import NanoGPT
    from tests.test_chess_hub_models import write_chessgpt_hub_cache

    count("files: hub nanoGPT ChessGPT")
    cache = tmp_path_factory.getbasetemp() / "fuzz_chessgpt"
    shutil.rmtree(cache, ignore_errors=True)
    torch.manual_seed(3)
    snapshot = write_chessgpt_hub_cache(cache, NanoGPT(vocab_size=32, block_size=32, n_layer=1, n_head=4, n_embd=16).eval())
    path = snapshot / (CHESS_GPT_FILE if name == "ckpt" else CHESS_GPT_META)
    path.write_bytes(damaged(path.read_bytes(), how))
    try:
        registry.load_model("chess-gpt-karvonen", cache_dir=cache)
    except ModelLoadError as exc:
        assert path.name in str(exc) or "meta" in str(exc) or "checkpoint" in str(exc), exc


def test_json_nan_survives_the_writer():
    """``set_json`` writes NaN as JSON's ``NaN`` token: the loaders see it, as a hand-edited file could hold it."""
    assert math.isnan(json.loads(json.dumps({"x": float("nan")}))["x"])


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("d_model", -1, "d_model must be a positive integer"),
        ("d_model", 10_000_000, "d_model must be a positive integer up to 8,192"),
        ("d_model", "256", "d_model must be a positive integer"),
        ("n_layers", True, "n_layers must be a positive integer"),
        ("d_vocab", 0, "d_vocab must be a positive integer"),
        ("d_mlp", 65536, "refusing to allocate"),  # each size allowed, the product is not: 128 layers below
    ],
)
def test_config_sizes_are_checked_before_anything_is_allocated(tiny_bundle, tmp_path, key, value, message):
    """The specific cases reported against the app (a config with ``d_model: 10000000`` once made a
    run allocate 22 GB before any weight was read)."""
    folder = fresh_copy(tiny_bundle, tmp_path / "bundle")
    set_json(folder / "config.json", ["tl_config", key], value)
    if key == "d_mlp":
        set_json(folder / "config.json", ["tl_config", "n_layers"], 128)
        set_json(folder / "config.json", ["tl_config", "d_model"], 8192)
    with pytest.raises(ModelLoadError, match=message):
        registry.load_model(str(folder))


# -- published SAEs and text-model files -----------------------------------------------------------


@pytest.fixture(scope="module")
def dl_zip(tmp_path_factory) -> Path:
    """A dictionary_learning zip with one TopK trainer (random weights)."""
    from tests.test_published_saes import dl_config, dl_state, write_zip

    return write_zip(tmp_path_factory.mktemp("dl") / "saes.zip", {"g/g-topk/trainer0": (dl_state("AutoEncoderTopK"), dl_config("AutoEncoderTopK"))})


@fuzz(FILE_CASES)
@given(how=BYTE_DAMAGE)
def test_dictionary_learning_zips(dl_zip, tmp_path_factory, how):
    from core.interp.sae.published import dl_sae_from_zip

    count("files: dictionary_learning zip bytes")
    path = tmp_path_factory.getbasetemp() / "fuzz_dl.zip"
    path.write_bytes(damaged(dl_zip.read_bytes(), how))
    try:
        dl_sae_from_zip(path, "g/g-topk/trainer0")
    except SAELoadError as exc:
        assert "fuzz_dl.zip" in str(exc), exc


@fuzz(FILE_CASES)
@given(which=st.sampled_from(["weights", "config"]), how=BYTE_DAMAGE)
def test_nanda_sae_files(tmp_path_factory, which, how):
    from core.interp.sae.published import nanda_sae_from_files
    from tests.test_text_hub import write_nanda_sae

    count("files: Nanda-format SAE bytes")
    folder = tmp_path_factory.getbasetemp() / "fuzz_nanda"
    folder.mkdir(exist_ok=True)
    write_nanda_sae(folder, 1, d_in=16, d_sae=32)
    path = folder / ("1.pt" if which == "weights" else "1_cfg.json")
    path.write_bytes(damaged(path.read_bytes(), how))
    try:
        nanda_sae_from_files(folder / "1.pt", folder / "1_cfg.json")
    except SAELoadError as exc:
        assert "fuzz_nanda" in str(exc), exc


@fuzz(FILE_CASES)
@given(how=BYTE_DAMAGE)
def test_tokenizer_files(tmp_path_factory, how):
    from core.text.tokenizer import TextTokenizer, TokenizerError, save_tokenizer, train_bpe

    count("files: tokenizer.json bytes")
    path = tmp_path_factory.getbasetemp() / "fuzz_tokenizer.json"
    save_tokenizer(train_bpe(["some text to learn from " * 20], 300), path)
    path.write_bytes(damaged(path.read_bytes(), how))
    try:
        tok = TextTokenizer.from_file(path)
    except TokenizerError as exc:
        assert "fuzz_tokenizer.json" in str(exc), exc
    else:
        tok.decode(tok.encode("some text"))  # a file that still reads still tokenises


GAME_FILES = {  # the first games of each shipped sample: a few kilobytes to damage
    "pgn": ("chess", "\n\n".join((Path(__file__).resolve().parents[1] / "assets" / "corpora" / "chess_random_vs_greedy.pgn").read_text().split("\n\n")[:8]) + "\n"),
    "othello": ("othello", "\n".join((Path(__file__).resolve().parents[1] / "assets" / "corpora" / "othello_random_vs_greedy.txt").read_text().splitlines()[:9]) + "\n"),
}


@fuzz(FILE_CASES)
@given(kind=st.sampled_from(sorted(GAME_FILES)), how=BYTE_DAMAGE)
def test_game_files(kind, how):
    """A damaged games upload gives a corpus of legal games (the unreadable ones skipped with a
    reason) or ``GameFileError`` naming the upload, never another exception."""
    from core.game_corpus import GameFileError, read_corpus
    from core.games.registry import get_game

    count("games file")
    game_name, text = GAME_FILES[kind]
    game = get_game(game_name, 8)
    try:
        corpus = read_corpus(damaged(text.encode(), how), "upload.txt", game)
    except GameFileError as exc:
        assert "upload.txt" in str(exc)
        return
    assert corpus.n_games >= 1 and all(isinstance(why, str) and why for _, why in corpus.skipped)
    game.replay(corpus.games)  # every kept game is legal for the engine (raises otherwise)
