"""Training under ``torchrun``: 2 gloo ranks train what 1 rank trains, and a killed run resumes on
another number of ranks without losing more than the steps since its last checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from core.train.distributed import Ranks, SettingError, resolve_device
from core.train.game_stream import GameStream, step_games
from core.train.next_move import TrainConfig, Trainer

ROOT = Path(__file__).resolve().parents[1]
# float32 (no bf16) so two ways of summing the same gradients differ only by rounding.
FLAGS = "--size 6 --n-layers 2 --d-model 32 --n-heads 4 --d-mlp 64 --batch-size 32 --warmup-steps 5 --eval-every 1000 --eval-games 50 --seed 3 --bf16 false --threads 1".split()
WIDTH = 32  # d_model in FLAGS


def launch(run: Path, ranks: int, *extra: str) -> subprocess.Popen:
    """``torchrun`` with ``ranks`` gloo processes."""
    head = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}", "-m", "core.train"]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # gloo on CPU even where a GPU is present
    return subprocess.Popen([*head, "next-move", str(run), *FLAGS, "--device", "cpu", *extra], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    return out


def weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / Trainer.CHECKPOINT, weights_only=True)["model"]


def saved_step(run: Path) -> int:
    try:
        return json.loads((run / "checkpoint.json").read_text())["step"]
    except (OSError, ValueError):
        return 0


def worst_relative_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """The largest ||a - b|| / ||b|| over the weight tensors.

    The attention key bias is left out: softmax ignores it, so its exact gradient is zero and
    what it holds is Adam's normalised rounding noise (checked to stay negligible instead).
    """
    worst = 0.0
    for name in b:
        x, y = a[name].double(), b[name].double()
        if name.endswith("qkv.bias"):
            key = slice(WIDTH, 2 * WIDTH)
            others = y[:WIDTH].abs().max()
            assert max(x[key].abs().max(), y[key].abs().max()) < 0.05 * others, f"{name}: the key bias moved like a trained weight"
            x, y = torch.cat([x[:WIDTH], x[2 * WIDTH :]]), torch.cat([y[:WIDTH], y[2 * WIDTH :]])
        worst = max(worst, float((x - y).norm() / y.norm().clamp(min=1e-12)))
    return worst


def test_a_step_s_games_do_not_depend_on_how_the_batch_is_split():
    for cfg in (TrainConfig(size=6, batch_size=12, steps=4), TrainConfig(game="chess", n_ctx=64, batch_size=6, steps=4)):
        whole = step_games(cfg, 2)
        for ranks in (2, 3):
            parts = [step_games(cfg, 2, *Ranks(r, ranks).batch_slice(cfg.batch_size)) for r in range(ranks)]
            for i in range(3):
                assert torch.equal(torch.cat([p[i] for p in parts]), whole[i]), (cfg.game, ranks, i)
        assert not torch.equal(step_games(cfg, 3)[0], whole[0])  # another step, other games
        by_workers = [[b for _, b in GameStream(cfg, 1, 4, 0, cfg.batch_size, workers=w)] for w in (0, 2)]
        for a, b in zip(*by_workers):
            assert all(torch.equal(x, y) for x, y in zip(a, b))
    with pytest.raises(SettingError, match="divisible by 5"):
        Ranks(0, 5).batch_slice(12)


def test_runs_made_before_per_game_seeds_keep_their_games(tmp_path):
    """A checkpoint without ``game_seeding`` resumes on the whole-step stream it was trained on."""
    cfg = TrainConfig(size=6, n_layers=1, d_model=16, n_heads=2, d_mlp=32, batch_size=8, steps=2, eval_games=10, game_seeding="per-step")
    trainer = Trainer(cfg, tmp_path)
    trainer.train()
    saved = torch.load(tmp_path / Trainer.CHECKPOINT, weights_only=True)
    del saved["config"]["game_seeding"]
    torch.save(saved, tmp_path / Trainer.CHECKPOINT)
    (tmp_path / "checkpoint.json").unlink()
    assert Trainer(TrainConfig(), tmp_path).cfg.game_seeding == "per-step"
    old = np.random.SeedSequence((cfg.seed, 1)).generate_state(1)[0]
    expected = cfg.game_plugin().random_token_batch(cfg.batch_size, int(old)).tokens
    assert np.array_equal(step_games(cfg, 1)[0].numpy(), expected)


def in_process(train_here, run: Path, *extra: str) -> str:
    """``python -m core.train next-move`` on one rank with the flags ``launch`` gives its ranks, run in
    the test's process (no interpreter start-up)."""
    return train_here(["next-move", run, *FLAGS, "--device", "cpu", *extra])


def test_two_gloo_ranks_train_what_one_rank_trains_and_resume_in_one_process(tmp_path, train_here):
    """Two ranks average two half-batch gradients where one rank sums the whole batch: the same
    float32 sums in another order, a few u of each gradient; after 20 Adam steps (a normalised
    update) the weights differ by ~1e-6 relative, and 1e-5 still fails on a wrong shard, a lost
    step or a schedule off by one (each moves weights by 1e-3 or more)."""
    one, two = tmp_path / "one", tmp_path / "two"
    in_process(train_here, one, "--steps", "30", "--until-step", "20")
    out = finish(launch(two, 2, "--steps", "30", "--until-step", "20"))
    assert "x 2 ranks (16 games each)" in out
    assert saved_step(one) == saved_step(two) == 20
    after_20 = worst_relative_difference(weights(two), weights(one))
    assert after_20 < 1e-5

    # The 2-rank checkpoint resumes in the single-process trainer and keeps the schedule.
    for run in (one, two):
        trainer = Trainer(TrainConfig(), run, overrides={"device": "cpu"})
        assert trainer.cfg.batch_size == 32 and trainer.state.games_seen == 20 * 32
        trainer.train()
    assert saved_step(two) == 30
    after_30 = worst_relative_difference(weights(two), weights(one))
    print(f"2 ranks vs 1: worst relative weight difference {after_20:.2e} at step 20, {after_30:.2e} after resuming to 30 in one process")
    assert after_30 < 1e-5


def _rank_pid(run: Path, rank: int) -> int | None:
    """The process of ``rank`` training ``run`` (torchrun's worker), from /proc."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(run).encode() in cmdline and b"torch.distributed.run" not in b" ".join(cmdline) and f"RANK={rank}".encode() in environ:
            return int(entry.name)
    return None


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the rank's process through /proc")
def test_sigkill_of_one_rank_then_resume_on_another_rank_count(tmp_path, train_here):
    """As the two-rank test: a different rank count sums the same gradients in another order (a few
    u per step); 1e-5 relative after resuming fails on a lost or repeated step."""
    killed, unbroken = tmp_path / "killed", tmp_path / "unbroken"
    proc = launch(killed, 2, "--steps", "120", "--checkpoint-every-s", "0.3")
    deadline = time.monotonic() + 120
    while saved_step(killed) < 15 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    pid = _rank_pid(killed, 1)
    assert pid is not None and proc.poll() is None, "the 2-rank run ended before it could be killed"
    os.kill(pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, "torchrun should report the killed rank"
    at_kill = saved_step(killed)
    assert 15 <= at_kill < 120, f"not killed mid-run (checkpoint at step {at_kill})"

    resumed = in_process(train_here, killed)  # 1 rank now: the checkpoint's config and schedule
    assert f"step {at_kill}/120" in resumed
    in_process(train_here, unbroken, "--steps", "120")
    state = json.loads(torch.load(killed / Trainer.CHECKPOINT, weights_only=True)["state_json"])
    assert state["step"] == 120 and state["games_seen"] == 120 * 32
    difference = worst_relative_difference(weights(killed), weights(unbroken))
    print(f"killed at checkpoint step {at_kill}, resumed on 1 rank from step {at_kill}: worst relative difference {difference:.2e} vs unbroken")
    assert difference < 1e-5


def test_device_choice_is_checked():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(SettingError, match="device must be one of"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(SettingError, match="sees no CUDA GPU"):
            resolve_device("cuda")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"))])
def test_trainer_runs_on_each_device(tmp_path, device):
    """The same few steps on the CPU and (where present) a GPU: pinned batches, autocast, evaluation."""
    cfg = TrainConfig(size=6, n_layers=1, d_model=32, n_heads=4, d_mlp=64, batch_size=16, steps=6, eval_every=3, eval_games=20, device=device, workers=1)
    trainer = Trainer(cfg, tmp_path)
    state = trainer.train()
    assert trainer.device.type == device and next(trainer.model.parameters()).device.type == device
    assert [h["step"] for h in state.history] == [3, 6] and state.timing[-1]["device"] == device
    assert all(np.isfinite(h["loss"]) for h in state.history)
    again = Trainer(TrainConfig(), tmp_path, overrides={"device": "cpu"})
    assert again.state.step == 6
