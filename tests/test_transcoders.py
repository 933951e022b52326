"""Per-layer skip transcoders: trained on the bundled othello8 model's own games, saved so that
SAELens loads them, measured on held-out games as a hand count over TransformerLens's cache
gives it, checkpointed and resumed."""

from __future__ import annotations

import json

import pytest
import torch

from core.models.registry import load_model
from core.train.transcoder import TranscoderTrainConfig, TranscoderTrainer, hooks_of, train_layers

SMALL = {"kind": "l1", "d_transcoder": 256, "total_tokens": 16 * 512, "batch_size": 512, "buffer_tokens": 4096, "games_per_refill": 40, "checkpoint_every": 5, "l1_coefficient": 0.05}
TOPK = {**SMALL, "kind": "batchtopk", "k": 8, "total_tokens": 24 * 512}


@pytest.fixture(scope="module")
def handle():
    return load_model("othello8")


@pytest.fixture(scope="module")
def trained(handle, tmp_path_factory):
    out = tmp_path_factory.mktemp("transcoders")
    card = train_layers(handle, out, [1], SMALL, "python -m core.train transcoder othello8 OUT --layer 1", eval_games=30)
    return out, card


def test_saelens_loads_the_transcoder_and_computes_what_we_trained(handle, trained):
    from sae_lens import SAE, SkipTranscoder

    out, _ = trained
    loaded = SAE.load_from_disk(str(out / "L1"))
    assert isinstance(loaded, SkipTranscoder) and loaded.cfg.metadata.hook_name == "blocks.1.ln2.hook_normalized"
    games = handle.game.random_games(5, seed=11)
    hook_in, hook_out = hooks_of(1)
    with handle.session() as model, torch.inference_mode():
        _, cache = model.run_with_cache(torch.from_numpy(handle.game.batch_tokens(games)))
    x, y = cache[hook_in].reshape(-1, handle.cfg.d_model), cache[hook_out].reshape(-1, handle.cfg.d_model)
    with torch.no_grad():
        ours = loaded.encode(x) @ loaded.W_dec + loaded.b_dec + x @ loaded.W_skip.T
        assert torch.allclose(loaded(x), ours, atol=1e-6, rtol=0)
        fvu = float((loaded(x) - y).pow(2).sum() / (y - y.mean(0)).pow(2).sum())
    assert fvu < 0.6  # it learned the MLP: predicting the mean would give 1


def test_the_card_measures_each_layer_on_held_out_games(handle, trained):
    """FVU, L0 and dead share equal a hand count over TransformerLens's cache of the same games
    (every token the games put in the context), to float32 rounding of sums of ~1e3 terms."""
    from sae_lens import SAE
    from core.train.transcoder import TRANSCODER_SEED_BASE

    out, card = trained
    saved = json.loads((out / "card.json").read_text())
    assert saved == json.loads(json.dumps(card)) and saved["command"].startswith("python -m core.train transcoder")
    (row,) = saved["metrics"]["layers"]
    assert set(row) >= {"layer", "fvu", "l0", "dead"} and row["layer"] == 1
    loaded = SAE.load_from_disk(str(out / "L1"))
    games = handle.game.random_games(30, seed=TRANSCODER_SEED_BASE + 1)
    tokens = torch.from_numpy(handle.game.batch_tokens(games))
    keep = torch.from_numpy(handle.game.batch_token_mask(games))
    hook_in, hook_out = hooks_of(1)
    with handle.session() as model, torch.inference_mode():
        _, cache = model.run_with_cache(tokens)
    x, y = cache[hook_in][keep], cache[hook_out][keep]
    with torch.no_grad():
        f = loaded.encode(x)
        fvu = float((loaded(x) - y).pow(2).sum() / (y - y.mean(0)).pow(2).sum())
    assert abs(row["fvu"] - fvu) <= 1e-3 and abs(row["l0"] - float((f > 0).float().sum(-1).mean())) <= 0.01
    assert row["tokens"] == len(x)


def test_an_interrupted_run_resumes_from_its_checkpoint(handle, tmp_path):
    cfg = TranscoderTrainConfig(layer=0, **SMALL)
    first = TranscoderTrainer(handle, cfg, tmp_path)

    class Stop(Exception):
        pass

    def stop_at_seven(text: str, fraction: float) -> None:
        if first.step >= 7:
            raise Stop

    with pytest.raises(Stop):
        first.train(lambda text, fraction: stop_at_seven(text, fraction) if first.step % 1 == 0 else None)
    saved = {k: v.clone() for k, v in first.tc.state_dict().items()}
    again = TranscoderTrainer(handle, cfg, tmp_path)
    assert again.resume() and again.step == 5  # the last checkpoint before the interruption
    assert any(not torch.equal(again.tc.state_dict()[k], saved[k]) for k in saved)  # steps 6 and 7 are not in it
    again.train()
    assert again.step == again.steps == 16
    with pytest.raises(ValueError, match="other settings"):
        TranscoderTrainer(handle, TranscoderTrainConfig(layer=0, **{**SMALL, "d_transcoder": 128}), tmp_path).resume()


def test_the_command_refuses_a_layer_the_model_does_not_have(tmp_path, capsys):
    from core.train.__main__ import main

    with pytest.raises(SystemExit, match="from 0 to 5"):
        main(["transcoder", "othello8", str(tmp_path), "--layer", "7"])


def test_batchtopk_saves_a_jumprelu_transcoder_whose_held_out_l0_is_near_k(handle, tmp_path):
    """BatchTopK keeps k × batch activations per batch; saved as SAELens's JumpReLU skip
    transcoder with the running threshold, held-out L0 lands near k and decoder rows stay unit."""
    from sae_lens import SAE, JumpReLUSkipTranscoder

    card = train_layers(handle, tmp_path, [2], TOPK, "python -m core.train transcoder othello8 OUT --layer 2 --k 8", eval_games=30)
    loaded = SAE.load_from_disk(str(tmp_path / "L2"))
    assert isinstance(loaded, JumpReLUSkipTranscoder) and card["kind"] == "jumprelu_skip_transcoder"
    assert float(loaded.threshold.min()) == float(loaded.threshold.max()) > 0
    assert torch.allclose(loaded.W_dec.norm(dim=1), torch.ones(loaded.cfg.d_sae), atol=1e-5)
    (row,) = card["metrics"]["layers"]
    assert 4 <= row["l0"] <= 16 and row["fvu"] < 0.9


def test_the_fine_tune_brings_the_replacement_closer_to_the_model(handle, tmp_path):
    """Every layer's transcoder trained briefly, then fine-tuned together on the KL from the model
    to the replacement: the KL on held-out games falls, and the model's weights do not move."""
    from core.interp.circuits.replacement import load_transcoders, replacement_hooks
    from core.train.transcoder_finetune import FinetuneConfig, ReplacementFinetuner

    settings = {**TOPK, "total_tokens": 8 * 512}
    train_layers(handle, tmp_path, list(range(handle.cfg.n_layers)), settings, "test", eval_games=20)
    games = handle.game.random_games(20, seed=99)
    tokens = torch.from_numpy(handle.game.batch_tokens(games))
    mask = torch.from_numpy(handle.game.batch_token_mask(games))
    weights = {k: v.clone() for k, v in handle.model.state_dict().items()}

    def kl(tcs) -> float:
        p = handle.run_with_hooks(tokens, []).float().log_softmax(-1)[mask]
        q = handle.run_with_hooks(tokens, replacement_hooks(tcs)).float().log_softmax(-1)[mask]
        return float((p.exp() * (p - q)).sum(-1).mean())

    tcs = load_transcoders(tmp_path, handle.cfg.n_layers)
    before = kl(tcs)
    scales = {layer: float(__import__("json").loads((tmp_path / f"L{layer}" / "checkpoint.json").read_text())["scale"]) for layer in tcs}
    tuner = ReplacementFinetuner(handle, tcs, FinetuneConfig(tokens=12 * 16 * handle.cfg.n_ctx, sequences_per_batch=16, lr=1e-3, k=8), tmp_path, scales)
    record = tuner.train()
    for p in handle.model.parameters():
        p.requires_grad_(True)
    assert record["steps"] == 12 and kl(tcs) < 0.9 * before
    assert all(torch.equal(v, weights[k]) for k, v in handle.model.state_dict().items())
