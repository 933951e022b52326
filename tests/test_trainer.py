"""The next-move trainer: killed mid-run and resumed, it ends exactly where an unbroken run does."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from core.games.othello import engine as othello
from core.models.bundle import load_bundle
from core.train.next_move import Trainer, TrainConfig
from tests.rounding import forward_bound

ROOT = Path(__file__).resolve().parents[1]
FLAGS = "--size 6 --n-layers 2 --d-model 32 --n-heads 4 --d-mlp 64 --batch-size 32 --steps 200 --eval-every 50 --eval-games 50 --seed 3".split()


def start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "core.train", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def checkpoint_step(run: Path) -> int:
    try:
        return json.loads(torch.load(run / Trainer.CHECKPOINT, weights_only=True)["state_json"])["step"]
    except (FileNotFoundError, RuntimeError, EOFError):
        return 0


def finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    return out


def test_kill_resume_is_exact_and_export_matches_trainer(tmp_path, train_here):
    """A killed and resumed run ends with the uninterrupted run's weights bit for bit; its export's
    logits equal the trainer's within their float32 rounding (``tests.rounding.forward_bound``)."""
    killed, unbroken = tmp_path / "killed", tmp_path / "unbroken"
    proc = start(["next-move", str(killed), *FLAGS, "--checkpoint-every-s", "0", "--threads", "1"])
    deadline = time.monotonic() + 120
    while checkpoint_step(killed) < 20 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.kill()  # SIGKILL: no cleanup, possibly in the middle of writing a checkpoint
    proc.wait()
    step_at_kill = checkpoint_step(killed)
    assert 20 <= step_at_kill < 200, f"the run was not killed mid-way (step {step_at_kill})"

    finish(start(["next-move", str(killed), "--threads", "1"]))  # resume: config comes from the checkpoint
    train_here(["next-move", unbroken, *FLAGS, "--threads", "1"])  # the same command unbroken, in this process
    out = train_here(["export", killed, tmp_path / "bundle", "--name", "t6", "--games", "100"])

    a = torch.load(killed / Trainer.CHECKPOINT, weights_only=True)
    b = torch.load(unbroken / Trainer.CHECKPOINT, weights_only=True)
    for key in b["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    state_a, state_b = json.loads(a["state_json"]), json.loads(b["state_json"])
    assert state_a["step"] == state_b["step"] == 200 and state_a["games_seen"] == 200 * 32
    assert state_a["history"] == state_b["history"]  # same losses and held-out metrics at every eval
    assert state_a["history"][-1]["top1_legal"] > state_a["history"][0]["top1_legal"]  # it learned

    card = json.loads((tmp_path / "bundle" / "card.json").read_text())
    assert card["steps"] == 200 and card["games_seen"] == 6400 and "--seed 3" in card["command"]
    assert "--steps 200" in card["command"] and "--threads" not in card["command"]  # the command reproduces the run
    assert json.loads(out)["eval"]["top1_legal"] == card["eval"]["top1_legal"]

    model, _, _ = load_bundle(tmp_path / "bundle")
    trainer = Trainer(TrainConfig(), killed)
    trainer.model.eval()
    games = othello.random_games(16, 6, seed=11)[:, : othello.context_length(6)]
    tokens = torch.from_numpy(othello.squares_to_tokens(games, 6).astype(np.int64))
    with torch.no_grad():
        torch.testing.assert_close(model(tokens), trainer.model(tokens), atol=forward_bound(model, tokens), rtol=0)  # float32 rounding (tests/rounding.py)


def test_extending_a_finished_run_keeps_its_schedule(tmp_path):
    from core.train.next_move import learning_rate

    cfg = TrainConfig(size=6, n_layers=1, d_model=16, n_heads=2, d_mlp=32, batch_size=8, steps=6, warmup_steps=2, eval_every=100, eval_games=10)
    Trainer(cfg, tmp_path).train()
    extended = Trainer(TrainConfig(), tmp_path, overrides={"steps": 9})
    assert extended.cfg.steps == 9 and extended.cfg.decay_steps == 6 and extended.state.step == 6
    assert [learning_rate(extended.cfg, s) for s in range(6)] == [learning_rate(cfg, s) for s in range(6)]
    assert learning_rate(extended.cfg, 7) == cfg.lr * cfg.min_lr_frac
    extended.train()
    assert extended.state.step == 9
    with pytest.raises(ValueError, match="only extend"):
        Trainer(TrainConfig(), tmp_path, overrides={"steps": 4})


def test_chess_run_trains_exports_and_reports_legality_per_token_kind(tmp_path):
    """The exported chess bundle's logits equal the trainer's within their float32 rounding
    (``tests.rounding.forward_bound``)."""
    from core.models.registry import load_model
    from core.train.export import export_run

    cfg = TrainConfig(game="chess", tokenizer="uci-squares", n_ctx=64, n_layers=1, d_model=32, n_heads=4, d_mlp=64, batch_size=8, steps=12, warmup_steps=2, eval_every=6, eval_games=10)
    trainer = Trainer(cfg, tmp_path / "run")
    trainer.train()
    assert [h["step"] for h in trainer.state.history] == [6, 12]
    assert set(trainer.state.history[-1]["by_kind"]) == {"from", "to", "promotion"}
    card = export_run(trainer, tmp_path / "bundle", "tinychess", "test", eval_games=20)
    assert card["eval"]["games"] == 20 and set(card["eval"]["by_kind"]) == {"from", "to", "promotion"}
    assert card["timing"] and 0.0 <= card["timing"][-1]["gen_share"] <= 1.0
    config = json.loads((tmp_path / "bundle" / "config.json").read_text())
    assert config["game"] == "chess" and config["tokenizer"] == "uci-squares" and config["tl_config"]["n_ctx"] == 64
    handle = load_model(str(tmp_path / "bundle"))
    assert handle.game.name == "chess" and handle.game.n_ctx == 64
    tokens = torch.from_numpy(handle.game.batch_tokens(handle.game.random_games(3, seed=1)))
    assert torch.allclose(handle.forward(tokens), trainer.model.eval()(tokens), atol=forward_bound(handle.model, tokens), rtol=0)


def test_a_bundle_trains_further_from_its_weights_and_its_card_covers_every_stage(tmp_path):
    """A warm start: the new run's model computes the bundle's logits before its first step, and
    the exported card adds the stages up (steps, games, curve) and lists both commands."""
    from core.models.convert import gpt_to_tl_state_dict, tl_to_gpt_state_dict
    from core.models.registry import load_model
    from core.train.__main__ import main as train_main
    from core.train.export import export_run
    from core.viz.training import stage_commands, training_summary

    small = dict(size=6, n_layers=2, d_model=16, n_heads=2, d_mlp=32, batch_size=8, warmup_steps=2, eval_every=3, eval_games=10)
    first = Trainer(TrainConfig(steps=8, **small), tmp_path / "run1")
    first.train(until_step=6)
    export_run(first, tmp_path / "bundle", "tiny", "python -m core.train next-move runs/tiny --steps 8", eval_games=10)
    state = tl_to_gpt_state_dict(gpt_to_tl_state_dict(first.model), first.model.cfg)
    assert all(torch.equal(state[k], v.float()) for k, v in first.model.state_dict().items() if k in state)

    second = Trainer(TrainConfig(steps=4, seed=5, init_from=str(tmp_path / "bundle"), **small), tmp_path / "run2")
    tokens = torch.from_numpy(second.cfg.game_plugin().batch_tokens(second.cfg.game_plugin().random_games(3, seed=1)))
    bundle = load_model(str(tmp_path / "bundle"))
    assert torch.allclose(second.model.eval()(tokens), bundle.forward(tokens), atol=forward_bound(bundle.model, tokens), rtol=0)
    second.train()
    card = export_run(second, tmp_path / "bundle2", "tiny", "python -m core.train next-move runs/tiny-stage2 --steps 4", eval_games=10)
    assert card["steps"] == 10 and card["games_seen"] == 80
    assert [h["step"] for h in card["history"]] == [3, 6, 9, 10]
    assert [s["steps"] for s in card["stages"]] == [6, 4] and card["stages"][0]["planned_steps"] == 8
    assert card["stages"][0]["weights_sha256"] == json.loads((tmp_path / "bundle" / "config.json").read_text())["sha256"]["model.safetensors"]
    summary = training_summary(card)
    assert "2 stages" in summary and "stopped early, of 8 planned" in summary and "game seed 5" in summary
    lines = stage_commands(card).splitlines()
    assert lines[0].endswith("--until-step 6") and lines[2].startswith("python -m core.train next-move runs/tiny-stage2") and len(lines) == 4

    wider = {**small, "d_model": 32}
    with pytest.raises(ValueError, match="a different model.*d_model 16"):
        Trainer(TrainConfig(steps=4, init_from=str(tmp_path / "bundle"), **wider), tmp_path / "run3")
    with pytest.raises(SystemExit, match="missing|not valid"):
        train_main(["next-move", str(tmp_path / "run4"), "--init-from", str(tmp_path / "nowhere"), "--steps", "1", "--size", "6"])
