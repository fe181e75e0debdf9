"""torchrun with 2 CPU processes (gloo) takes the same steps as one process with the same global batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file
import torch

TORCHRUN = Path(sys.executable).with_name("torchrun")
NO_TORCHRUN = f"{TORCHRUN} is missing: torchrun comes with torch (make setup installs it)"


@pytest.mark.skipif(not TORCHRUN.exists(), reason=NO_TORCHRUN)
def test_two_processes_match_one_with_the_same_global_batch(tiny_corpus, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    common = ["--config", str(tiny_corpus["config"]), "--set", "train.max_steps=20", "--set", "train.eval_every=10",
              "--set", "train.dev_bleu_sentences=0", "--quiet"]
    single = subprocess.run([sys.executable, "-m", "attnlab", "--quiet", "train", *common[:-1], "--out", str(tmp_path / "one"),
                             "--set", "train.accumulate=2"], env=env, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    multi = subprocess.run([str(TORCHRUN), "--standalone", "--nproc_per_node=2", "-m", "attnlab", "--quiet", "train",
                            *common[:-1], "--out", str(tmp_path / "two"), "--set", "train.accumulate=1"],
                           env=env, capture_output=True, text=True, timeout=300)
    assert multi.returncode == 0, multi.stderr[-3000:]
    a = load_file(tmp_path / "one" / "checkpoints" / "step-00000020" / "model.safetensors")
    b = load_file(tmp_path / "two" / "checkpoints" / "step-00000020" / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5, msg=name)
    losses = lambda d: [r["loss"] for r in map(json.loads, (d / "metrics.jsonl").read_text().splitlines()) if "loss" in r]
    assert losses(tmp_path / "one") == pytest.approx(losses(tmp_path / "two"), rel=1e-4)


@pytest.mark.skipif(not TORCHRUN.exists(), reason=NO_TORCHRUN)
def test_resume_under_torchrun(tiny_corpus, tmp_path):
    """Stop a 2-process run at step 10, resume it to step 20: the same weights as the 1-process run."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    base = ["--config", str(tiny_corpus["config"]), "--set", "train.eval_every=10", "--set", "train.dev_bleu_sentences=0"]
    torchrun = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", "-m", "attnlab", "--quiet", "train"]
    first = subprocess.run([*torchrun, *base, "--out", str(tmp_path / "two"), "--set", "train.max_steps=10"],
                           env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    again = subprocess.run([*torchrun, "--out", str(tmp_path / "two"), "--resume", "--set", "train.max_steps=20"],
                           env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    single = subprocess.run([sys.executable, "-m", "attnlab", "--quiet", "train", *base, "--out", str(tmp_path / "one"),
                             "--set", "train.max_steps=20", "--set", "train.accumulate=2"],
                            env=env, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    a = load_file(tmp_path / "one" / "checkpoints" / "step-00000020" / "model.safetensors")
    b = load_file(tmp_path / "two" / "checkpoints" / "step-00000020" / "model.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.slow
@pytest.mark.skipif(not TORCHRUN.exists(), reason=NO_TORCHRUN)
def test_sigkill_under_torchrun_resumes_bit_for_bit(tiny_corpus, tmp_path):
    """SIGKILL torchrun and both workers at once (a lost machine) soon after the step-20 checkpoint;
    the same command line with --resume ends equal, bit for bit, to an uninterrupted 2-process run.
    torchrun starts its workers in sessions of their own, so they are found by parent pid: killing
    torchrun's process group alone would leave them training on as orphans."""
    import random
    import signal
    import time

    env = dict(os.environ, OMP_NUM_THREADS="1")
    torchrun = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", "-m", "attnlab", "--quiet", "train",
                "--config", str(tiny_corpus["config"]), "--set", "train.eval_every=10",
                "--set", "train.dev_bleu_sentences=0", "--set", "train.max_steps=300", "--resume"]
    whole = subprocess.run([*torchrun, "--out", str(tmp_path / "whole")], env=env, capture_output=True, text=True,
                           timeout=600)
    assert whole.returncode == 0, whole.stderr[-3000:]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*torchrun, "--out", str(killed)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not (killed / "checkpoints" / "step-00000020").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(random.Random(0).uniform(0.0, 0.2))
    assert proc.poll() is None, "the run ended before it could be killed"
    workers = _children(proc.pid)
    assert len(workers) == 2, workers
    for pid in [proc.pid, *workers]:
        os.kill(pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)
    assert not any(Path(f"/proc/{pid}").exists() and _state(pid) != "Z" for pid in workers)
    assert not (killed / "checkpoints" / "step-00000300").exists()
    again = subprocess.run([*torchrun, "--out", str(killed)], env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    a = load_file(tmp_path / "whole" / "model.safetensors")
    b = load_file(killed / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()[-1] == \
        (killed / "metrics.jsonl").read_text().splitlines()[-1]


def _children(pid: int) -> list[int]:
    """Pids whose parent is `pid` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
