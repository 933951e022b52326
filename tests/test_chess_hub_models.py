"""Published chess models from an offline hub cache, converted exactly (fixtures in the hub layout)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from core.games.chess.tokens import published_vocab
from core.models import registry
from core.models.errors import ModelLoadError
from core.models.hf_gpt2 import CHESS_GPT2_REPO, load_hf_gpt2
from tests.gpt2_reference import GPT2
from tests.rounding import forward_bound, pair_bound

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def write_gpt2_hub_cache(cache: Path, model: GPT2, weights: str = "pytorch_model.bin", vocab: list[str] | None = None) -> Path:
    repo_dir = cache / ("models--" + CHESS_GPT2_REPO.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps(model.config))
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    state["lm_head.weight"] = state["transformer.wte.weight"]
    if weights == "model.safetensors":
        state.pop("lm_head.weight")  # tied: saved once, as transformers does
        save_file({k: v.contiguous() for k, v in state.items()}, str(snapshot / weights))
    else:
        torch.save(state, snapshot / weights)
    words = vocab or list(published_vocab("uci-squares"))
    tokenizer = {"version": "1.0", "model": {"type": "WordLevel", "vocab": {t: i for i, t in enumerate(words)}, "unk_token": "<pad>"}}
    (snapshot / "tokenizer.json").write_text(json.dumps(tokenizer))
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(COMMIT)
    return snapshot


@pytest.mark.parametrize("weights", ["pytorch_model.bin", "model.safetensors"])
def test_gpt2_chess_model_loads_offline_and_matches_the_reference(tmp_path, weights):
    spec = next(s for s in registry.list_models() if s.name == "chess-gpt2-uci")
    assert spec.game == "chess" and spec.needs_network
    with pytest.raises(ModelLoadError, match="network access"):
        registry.load_model(spec.name, cache_dir=tmp_path)
    torch.manual_seed(0)
    reference = GPT2(vocab=77, n_positions=64, n_layer=2, n_head=4, n_embd=32).eval()
    write_gpt2_hub_cache(tmp_path, reference, weights)
    handle = registry.load_model(spec.name, cache_dir=tmp_path)
    game = handle.game
    assert game.name == "chess" and game.n_ctx == 64 and handle.info.card["vocab_check"].startswith("tokenizer matches")
    tokens = torch.from_numpy(game.batch_tokens(game.random_games(6, seed=2)))
    with torch.no_grad():
        expected = reference(tokens)
    assert (handle.forward(tokens) - expected).abs().max().item() <= forward_bound(handle.model, tokens)  # float32 rounding (tests/rounding.py)


def test_a_checkpoint_vocabulary_replaces_the_published_one_and_is_reported(tmp_path):
    torch.manual_seed(1)
    reference = GPT2(vocab=77, n_positions=32, n_layer=1, n_head=2, n_embd=16).eval()
    vocab = list(published_vocab("uci-squares"))
    vocab[9], vocab[10] = vocab[10], vocab[9]  # two squares swapped
    write_gpt2_hub_cache(tmp_path, reference, vocab=vocab)
    handle = registry.load_model("chess-gpt2-uci", cache_dir=tmp_path)
    assert "differs" in handle.info.card["vocab_check"] and "2 of 77" in handle.info.card["vocab_check"]
    assert handle.game.tokenizer.vocab == tuple(vocab)


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda s: (s / "config.json").write_text("{not json"), "config.json: not valid JSON"),
        (lambda s: (s / "config.json").write_text(json.dumps({"n_embd": -1, "n_head": 4, "n_layer": 2, "vocab_size": 77, "n_positions": 64})), "config.json: n_embd"),
        (lambda s: (s / "config.json").write_text(json.dumps({"n_embd": 48, "n_head": 4, "n_layer": 2, "vocab_size": 77, "n_positions": 64})), "pytorch_model.bin: transformer.wte.weight has shape"),
        (lambda s: (s / "pytorch_model.bin").write_bytes(b"\x00garbage"), "pytorch_model.bin: not a readable PyTorch checkpoint"),
        (lambda s: (s / "tokenizer.json").write_text(json.dumps({"model": {"vocab": {"a": 0, "b": 5}}})), "tokenizer.json: token ids"),
    ],
)
def test_damaged_files_name_the_file(tmp_path, damage, message):
    torch.manual_seed(2)
    snapshot = write_gpt2_hub_cache(tmp_path, GPT2(vocab=77, n_positions=64, n_layer=2, n_head=4, n_embd=32))
    damage(snapshot)
    with pytest.raises(ModelLoadError, match=message):
        load_hf_gpt2(snapshot)


def write_chessgpt_hub_cache(cache: Path, model, meta: bytes | None = None) -> Path:
    """Karvonen's files (nanoGPT ``ckpt.pt`` dict + ``meta.pkl``) in the hub cache layout."""
    import pickle

    from core.models.nanogpt import CHESS_GPT_FILE, CHESS_GPT_META, CHESS_GPT_REPO

    repo_dir = cache / ("models--" + CHESS_GPT_REPO.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    state = {"_orig_mod." + k: v.detach().clone() for k, v in model.state_dict().items()}  # as torch.compile saves it
    n_layer = len(model.transformer.h)
    args = {"n_layer": n_layer, "n_head": 4, "n_embd": model.transformer.wte.weight.shape[1], "block_size": model.transformer.wpe.weight.shape[0], "bias": True, "vocab_size": 32}
    torch.save({"model": state, "model_args": args, "iter_num": 600000, "best_val_loss": torch.tensor(0.5), "config": {"dataset": "lichess"}}, snapshot / CHESS_GPT_FILE)
    vocab = list(published_vocab("pgn-chars"))
    plain = {"vocab_size": 32, "itos": dict(enumerate(vocab)), "stoi": {c: i for i, c in enumerate(vocab)}}
    (snapshot / CHESS_GPT_META).write_bytes(meta if meta is not None else pickle.dumps(plain))
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / "main").write_text(COMMIT)
    return snapshot


def test_karvonen_chessgpt_loads_offline_and_matches_nanogpt(tmp_path):
    """The loaded checkpoint's logits equal the reference nanoGPT's within their float32 rounding
    (``tests.rounding.forward_bound``); a move's probability, a product over its characters,
    within the rounding of its summed log-probabilities (``pair_bound``)."""
    from tests.nanogpt_reference import NanoGPT

    with pytest.raises(ModelLoadError, match="network access"):
        registry.load_model("chess-gpt-karvonen", cache_dir=tmp_path)
    torch.manual_seed(3)
    reference = NanoGPT(vocab_size=32, block_size=96, n_layer=2, n_head=4, n_embd=32).eval()
    write_chessgpt_hub_cache(tmp_path, reference)
    handle = registry.load_model("chess-gpt-karvonen", cache_dir=tmp_path)
    game = handle.game
    assert game.key == "chess-pgn-chars" and game.n_ctx == 96 and handle.cfg.d_vocab == 32
    assert handle.info.card["vocab_check"].startswith("tokenizer matches")
    tokens = torch.from_numpy(game.batch_tokens(game.random_games(4, seed=1)))
    assert "".join(game.tokenizer.vocab[int(t)] for t in tokens[0, :3]) == ";1."
    with torch.no_grad():
        expected = reference(tokens)
    assert (handle.forward(tokens) - expected).abs().max().item() <= forward_bound(handle.model, tokens)  # float32 rounding (tests/rounding.py)
    # A move's probability is the product of its characters' probabilities, as scored on the page.
    from core.games.chess import rules as C
    from core.interp.shared.predictions import predict

    state = game.state(C.parse_moves("e4 e5"))
    pred = predict(handle, state)
    prefix = list(game.game_tokens(state.moves))
    assert "".join(game.tokenizer.vocab[t] for t in prefix) == ";1.e4 e5 2."
    move = C.parse_moves("Nf3", state.moves)[0]
    chars = list(game.tokenizer.encode_text("Nf3 "))  # the space ends the move ("O-O" starts "O-O-O")
    with torch.no_grad():
        logp = reference(torch.tensor([prefix + chars])).log_softmax(-1)[0]
    direct = float(sum(logp[len(prefix) - 1 + i, c] for i, c in enumerate(chars)).exp())
    # Relative error of a product of probabilities = absolute error of its summed log-probs.
    whole = lambda m: m(torch.tensor([prefix + chars])).log_softmax(-1)[0, torch.arange(len(chars)) + len(prefix) - 1, torch.tensor(chars)].sum()  # noqa: E731
    assert pred.move_probs[move] == pytest.approx(direct, rel=pair_bound(handle.model, whole, len(prefix) + len(chars)))
    assert set(pred.move_probs) == set(state.legal_moves)


def test_meta_pickle_that_would_run_code_is_refused(tmp_path):
    import pickle

    from tests.nanogpt_reference import NanoGPT

    class Exploit:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    torch.manual_seed(4)
    snapshot = write_chessgpt_hub_cache(tmp_path, NanoGPT(vocab_size=32, block_size=32, n_layer=1, n_head=4, n_embd=16), meta=pickle.dumps({"itos": Exploit()}))
    with pytest.raises(ModelLoadError, match="meta.pkl: not a plain vocabulary pickle.*refused"):
        registry.load_model("chess-gpt-karvonen", cache_dir=tmp_path)
    assert not (tmp_path / "pwned").exists()
    (snapshot / "meta.pkl").write_bytes(pickle.dumps({"itos": {0: "a", 2: "b"}}))
    with pytest.raises(ModelLoadError, match="token ids"):
        registry.load_model("chess-gpt-karvonen", cache_dir=tmp_path)


def test_damaged_chessgpt_checkpoint_names_the_file(tmp_path):
    from core.models.nanogpt import CHESS_GPT_FILE
    from tests.nanogpt_reference import NanoGPT

    torch.manual_seed(5)
    snapshot = write_chessgpt_hub_cache(tmp_path, NanoGPT(vocab_size=32, block_size=32, n_layer=1, n_head=4, n_embd=16))
    (snapshot / CHESS_GPT_FILE).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ModelLoadError, match=f"{CHESS_GPT_FILE}: not a readable nanoGPT checkpoint"):
        registry.load_model("chess-gpt-karvonen", cache_dir=tmp_path)


def test_karvonen_chessgpt_probes_read_where_each_board_is_complete(tmp_path):
    """Character-level PGN: as in Karvonen's probes, the board after a move is read at the end of
    the separator that follows it (the space before Black's move, the '.' before White's), both
    in training and on the page."""
    from core.interp.probes import linear_probes as P
    from tests.nanogpt_reference import NanoGPT

    torch.manual_seed(4)
    write_chessgpt_hub_cache(tmp_path, NanoGPT(vocab_size=32, block_size=96, n_layer=2, n_head=4, n_embd=32).eval())
    handle = registry.load_model("chess-gpt-karvonen", cache_dir=tmp_path)
    game = handle.game
    games = game.random_games(3, seed=5)
    positions = game.move_positions(games)
    text = game.tokenizer.records([int(m) for m in games[0] if m >= 0])[0]
    from core.games.chess import rules as C

    sans = C.san_moves([int(m) for m in games[0] if m >= 0])
    for t in range(3):
        assert text[: positions[0, t] + 1].endswith(sans[t] + game.tokenizer.separator(t + 1))
    assert text[positions[0, 0]] == " " and text[positions[0, 1]] == "."
    assert positions.max() < game.n_ctx and (positions[games < 0] == -1).all()
    probes = P.train_probes(handle, "piece", ["blocks.1.hook_resid_post"], train_games=6, test_games=3)
    probe = probes["blocks.1.hook_resid_post"]
    assert probe.meta["held_out"]["positions"] > 0
    moves = tuple(C.parse_moves("e4 e5 Nf3"))
    read = P.probe_position(handle, probes, moves)["blocks.1.hook_resid_post"]
    prefix = torch.from_numpy(game.tokenizer.encode_text(";1.e4 e5 2.Nf3 ")[None])
    act = handle.activations(prefix, ["blocks.1.hook_resid_post"])["blocks.1.hook_resid_post"][0, -1]
    np.testing.assert_allclose(read, probe.probs(act).numpy(), atol=1e-5)
