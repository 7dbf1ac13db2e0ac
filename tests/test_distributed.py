"""Many processes: torchrun with 2 CPU processes reaches the weights of one process with the same
global batch; the memory suite's --jobs gives the serial results."""

import os
import socket
import subprocess
import sys

import pytest
import torch

from lstmlab.experiments import memory_suite as suite
from lstmlab.experiments.lm_eval import load_language_model
from lstmlab.experiments.memory_trial import Budget, LearnerConfig
from lstmlab.train import load_checkpoint


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(tmp_path, text, out, processes):
    args = ["-m", "lstmlab", "lm", "train", str(text), "--out", str(out), "--steps", "6",
            "--hidden", "16", "--layers", "2", "--seq-len", "8", "--batch", "6", "--lr", "0.01",
            "--eval-every", "3", "--no-progress", "--threads", "1", "--cell", "lstm:CIFG"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if processes == 1:
        command = [sys.executable, *args]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node",
                   str(processes), "--master_addr", "127.0.0.1", "--master_port",
                   str(_free_port()), *args]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.skipif(not torch.distributed.is_available(), reason="no torch.distributed")
def test_two_processes_reach_the_weights_of_one(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 60)
    _train(tmp_path, text, tmp_path / "one", 1)
    two = _train(tmp_path, text, tmp_path / "two", 2)
    assert two.stderr.count("valid") >= 2  # only rank 0 reports: one line per validation
    assert two.stderr.count("model: 2x16") == 1
    for run in ("one", "two"):
        assert load_checkpoint(tmp_path / run / "last.json")[1]["trainer"]["state"]["step"] == 6
    a = load_language_model(tmp_path / "one" / "last.json").model
    b = load_language_model(tmp_path / "two" / "last.json").model
    torch.manual_seed(0)
    start = type(a)(**a.config())  # the same seed's initial weights: training moved them
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.allclose(x, y, atol=1e-5, rtol=1e-4), name
    assert any(not torch.allclose(x, x0) for x, x0 in zip(
        a.state_dict().values(), start.state_dict().values(), strict=True))


def test_more_processes_than_rows_is_a_clear_error(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("abc " * 200)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "3",
               "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
               "-m", "lstmlab", "lm", "train", str(text), "--out", str(tmp_path / "x"),
               "--steps", "2", "--hidden", "4", "--batch", "2", "--no-progress"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=240,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert done.returncode != 0
    assert "3 processes cannot share --batch 2" in done.stderr


def test_memory_jobs_give_the_serial_results():
    runs = suite.plan(["intern", "latch"], ["lstm", "guess"], [5])
    config = LearnerConfig(hidden=8)
    budget = Budget(sequences=3_000, guesses=50)
    serial = suite.run_suite(runs, seeds=2, config=config, budget=budget, test_size=256)
    parallel = suite.run_suite(runs, seeds=2, config=config, budget=budget, test_size=256,
                               jobs=2)
    keys = ("task", "learner", "seed", "solved", "sequences", "sequences_to_success",
            "test_errors", "guesses")
    assert [tuple(getattr(r, k) for k in keys) for r in serial.results] == \
        [tuple(getattr(r, k) for k in keys) for r in parallel.results]
    assert len(serial.results) == 8


RANKS_AGREE = """
import time, torch, torch.distributed as dist
from torch import nn
from lstmlab.tasks import Batch
from lstmlab.train import StepOutput, Trainer, TrainConfig

def batches():
    g = torch.Generator().manual_seed(0)
    while True:
        yield Batch(torch.randn(4, 8, 3, generator=g), torch.randn(4, 8, generator=g))

def step(model, batch):
    if dist.get_rank() == 1:
        time.sleep(0.002)  # this rank's clock runs ahead of the other's
    out = model(batch.inputs).squeeze(2)
    return StepOutput(((out - batch.targets) ** 2).mean(), batch.batch_size)

torch.manual_seed(0)
model = nn.Linear(3, 1)
trainer = Trainer(model, TrainConfig(lr=0.05, schedule="cosine", max_seconds=1.0,
                                     progress=False, log_every=1))
trainer.run(step, batches())
weights = torch.cat([p.detach().flatten() for p in model.parameters()])
gathered = [torch.zeros_like(weights) for _ in range(2)]
dist.all_gather(gathered, weights)
lrs = torch.tensor([p["lr"] for p in trainer.history[:20]])
lrs_gathered = [torch.zeros_like(lrs) for _ in range(2)]
dist.all_gather(lrs_gathered, lrs)
if dist.get_rank() == 0:
    assert trainer.state.step > 20, trainer.state.step
    assert torch.equal(lrs_gathered[0], lrs_gathered[1]), lrs_gathered
    assert torch.allclose(gathered[0], gathered[1], atol=1e-6), gathered
    print("ranks agree after", trainer.state.step, "steps")
"""


@pytest.mark.skipif(not torch.distributed.is_available(), reason="no torch.distributed")
def test_a_time_budget_cosine_gives_every_rank_the_same_rate(tmp_path):
    script = tmp_path / "ranks.py"
    script.write_text(RANKS_AGREE)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), str(script)]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=240,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ranks agree after" in done.stdout
