"""Training under faults. A run killed with SIGKILL at random moments, inside checkpoint writes too, and
resumed each time ends with the same weights, optimizer state and metrics log as an uninterrupted run,
bit for bit; corrupt, missing or mismatched run files give one error line naming the file, and --resume
falls back past a corrupt checkpoint and says so; NaN/inf steps are skipped and stop the run after
`train.max_bad_steps` in a row; a full disk or a read-only folder stops training with one line and keeps
the last good checkpoint. (Input fuzzing is in test_fuzz.py, the HTTP service in test_serve_faults.py.)

`make test-reliability` runs the slow variants (more kills, longer runs)."""

import errno
import json
import logging
import math
import os
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from attnlab import checkpoint
from attnlab import train as train_mod
from attnlab.cli import main
from attnlab.config import load_config
from attnlab.errors import AttnlabError
from attnlab.translate.pytorch import Translator
from conftest import write_tiny_corpus

SETS = ["model.dropout=0.1"]  # dropout on: resuming must restore the RNG too, or the weights drift

# Runs `attnlab` with a SIGKILL planted inside one file write: KILL_AT=NAME:K kills the process during its
# K-th atomic write of a file called NAME, when half of the bytes are in the temp file (as a power cut would).
KILLER = textwrap.dedent('''
    import os, signal, sys
    from attnlab import checkpoint, fileio, tokenizer
    from attnlab.cli import main

    name, k = os.environ["KILL_AT"].rsplit(":", 1)
    seen = 0
    real = fileio.atomic_write_bytes

    def write(path, data):
        global seen
        if path.name == name:
            seen += 1
            if seen == int(k):
                with open(path.with_name(f".{path.name}.tmp-{os.getpid()}"), "wb") as f:
                    f.write(data[: len(data) // 2])
                    f.flush()
                os.kill(os.getpid(), signal.SIGKILL)
        real(path, data)

    fileio.atomic_write_bytes = checkpoint.atomic_write_bytes = tokenizer.atomic_write_bytes = write
    sys.exit(main(sys.argv[1:]))
''')


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """The tiny digits corpus of conftest and its config, shared by the module (one config file: one config.toml)."""
    folder = tmp_path_factory.mktemp("corpus")
    config = write_tiny_corpus(folder)["config"]
    (folder / "killer.py").write_text(KILLER, encoding="utf-8")
    return config


def reference_run(config: Path, out: Path, sets: list[str]) -> Path:
    """An uninterrupted run with the same seed, trained in this process."""
    train_mod.train(load_config(config, sets), out)
    return out


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> Path:
    return reference_run(corpus, tmp_path_factory.mktemp("ref") / "run", SETS)


def metrics(run_dir: Path) -> list[dict]:
    """The log without its wall-clock fields."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("tok_s", "elapsed_s")} for r in records]


def assert_same_run(run: Path, ref: Path) -> None:
    """Bit for bit: best weights, scores, manifest, tokenizer, every kept checkpoint's tensors, and the log."""
    assert metrics(run) == metrics(ref)
    for name in ("model.safetensors", "scores.json", "manifest.json", "config.toml", "tokenizer/joint.model"):
        assert (run / name).read_bytes() == (ref / name).read_bytes(), name
    ckpts = lambda d: sorted(p.name for p in (d / "checkpoints").iterdir())
    assert ckpts(run) == ckpts(ref)
    for name in ckpts(ref):
        for f in ("model.safetensors", "optimizer.safetensors"):
            assert (run / "checkpoints" / name / f).read_bytes() == (ref / "checkpoints" / name / f).read_bytes()


def launch(corpus: Path, run_dir: Path, sets: list[str], kill_at: str = "none:0",
           kill_after: float | None = None) -> tuple[int, str]:
    """One `attnlab train --config C --out D --resume` (the same command line every time), killed with
    SIGKILL inside a file write (kill_at), or kill_after seconds after it set out (resumed, or began
    training its tokenizer), so that a slow start on a busy machine does not eat the delay; (exit status, stderr)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", KILL_AT=kill_at)
    argv = [sys.executable, str(corpus.parent / "killer.py"), "train", "--config", str(corpus), "--out", str(run_dir),
            "--resume", *(a for s in sets for a in ("--set", s))]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    head = []
    if kill_after is not None:
        while line := proc.stderr.readline():
            head.append(line)
            if b"resumed from" in line or b"training the" in line:
                break
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.kill()
    _, err = proc.communicate(timeout=600)
    return proc.returncode, b"".join(head).decode() + err.decode()


def kill_and_resume(corpus: Path, run_dir: Path, sets: list[str], plan: list[dict]) -> list[int]:
    """Launch once per kill in the plan, then once more to the end; the exit status of each launch."""
    codes = []
    for kill in plan:
        code, err = launch(corpus, run_dir, sets, **kill)
        codes.append(code)
        assert code in (0, -9), err
        if code == 0:
            break  # finished before the kill came
    code, err = launch(corpus, run_dir, sets)
    assert code == 0, err
    return codes + [code]


def test_sigkill_mid_checkpoint_and_at_a_random_moment_resumes_bit_for_bit(corpus, reference, tmp_path):
    run_dir = tmp_path / "run"
    # 1: killed while writing the optimizer state of the step-40 checkpoint
    code, _ = launch(corpus, run_dir, SETS, kill_at="optimizer.safetensors:2")
    assert code == -9
    names = sorted(p.name for p in (run_dir / "checkpoints").iterdir())  # ".tmp-..." sorts first
    assert len(names) == 2 and names[0].startswith(".tmp-") and names[1] == "step-00000020"
    assert checkpoint.latest_checkpoint(run_dir).name == "step-00000020"
    # 2: the same command resumes from step 20 and says so; killed at a random moment
    delay = random.Random(7).uniform(0.0, 1.0)
    code, err = launch(corpus, run_dir, SETS, kill_after=delay)
    assert "resumed from" in err and "step-00000020" in err
    # 3: to the end
    code, err = launch(corpus, run_dir, SETS)
    assert code == 0, err
    assert_same_run(run_dir, reference)
    assert not list((run_dir / "checkpoints").glob(".tmp-*"))  # the half-written checkpoint was cleared


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_many_sigkills_resume_bit_for_bit(corpus, tmp_path, seed):
    """10 kills per run, half inside a write of a randomly chosen file, half at a random moment within the
    first tenth of the run's length (so that the run is rarely over before the last kill, however busy the machine)."""
    sets = [*SETS, "train.max_steps=400", "train.eval_every=10", "train.log_every=5"]
    started = time.monotonic()
    reference = reference_run(corpus, tmp_path / "ref", sets)
    tenth = (time.monotonic() - started) / 10
    rng = random.Random(seed)
    writes = {"model.safetensors": 6, "optimizer.safetensors": 3, "state.json": 3, "scores.json": 2,  # file: most K
              "manifest.json": 3, "config.toml": 1, "metrics.jsonl": 1, "joint.model": 1}
    plan = [{"kill_at": f"{f}:{rng.randint(1, writes[f])}" for f in [rng.choice(sorted(writes))]} if i % 2
            else {"kill_after": rng.uniform(0.0, tenth)} for i in range(10)]
    codes = kill_and_resume(corpus, tmp_path / "run", sets, plan)
    assert codes.count(-9) >= 8, (plan, codes)  # a late kill may find the run finished (or K past the writes)
    print(f"seed {seed}: {codes.count(-9)} SIGKILLs landed, {len(codes) - 1} resumes")
    assert_same_run(tmp_path / "run", reference)


# -- corrupt, missing and mismatched files -------------------------------------------------------------

@pytest.fixture
def run_copy(reference, tmp_path) -> Path:
    import shutil

    return Path(shutil.copytree(reference, tmp_path / "run"))


def one_error(args: list[str], capsys) -> str:
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("attnlab: error: "), err
    return err


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x10
    path.write_bytes(bytes(data))


CORRUPTIONS = {  # name -> (what to do to a copy of a finished run, the file the error must name, words)
    "truncated weights": (lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:500]),
                          "model.safetensors", "checksum"),
    "one flipped bit in a weight": (lambda d: _flip_last_byte(d / "model.safetensors"), "model.safetensors", "checksum"),
    "edited header, no manifest": (lambda d: ((d / "manifest.json").unlink(),
                                              (d / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{bad json")),
                                   "model.safetensors", "corrupt"),
    "missing tokenizer": (lambda d: (d / "tokenizer" / "joint.model").unlink(), "joint.model", "missing"),
    "corrupt tokenizer, no manifest": (lambda d: ((d / "manifest.json").unlink(),
                                                  (d / "tokenizer" / "joint.model").write_bytes(b"not a model")),
                                       "joint.model", "corrupt"),
    "config from another version": (lambda d: (d / "config.toml").write_text(
        (d / "config.toml").read_text().replace("version = 1", "version = 2")), "config.toml", "version 2"),
    "config not TOML": (lambda d: (d / "config.toml").write_text("[model\n"), "config.toml", "not valid TOML"),
    "scores of the other direction": (lambda d: (d / "scores.json").write_text(json.dumps({"direction": "en-zh"})),
                                      "scores.json", "trained for en-zh"),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
@pytest.mark.parametrize("command", ["translate", "evaluate"])
def test_corrupt_run_files_give_one_line_naming_the_file(run_copy, capsys, case, command, tmp_path):
    damage, culprit, words = CORRUPTIONS[case]
    damage(run_copy)
    src = tmp_path / "in.txt"
    src.write_text("一二三\n", encoding="utf-8")
    args = ["translate", "--input", str(src)] if command == "translate" else ["evaluate", "--split", "dev"]
    err = one_error([args[0], "--model", str(run_copy), *args[1:]], capsys)
    assert culprit in err and words in err, err


def test_resume_into_the_other_direction_is_refused(run_copy, capsys):
    err = one_error(["train", "--out", str(run_copy), "--resume", "--set", "direction=en-zh"], capsys)
    assert "config.toml is a zh-en run" in err and "en-zh" in err


def test_resume_falls_back_past_a_corrupt_checkpoint_and_says_so(corpus, reference, tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO)
    run_dir = tmp_path / "run"
    assert main(["train", "--config", str(corpus), "--out", str(run_dir), "--set", "train.max_steps=40",
                 *(a for s in SETS for a in ("--set", s))]) == 0
    newest = run_dir / "checkpoints" / "step-00000040" / "model.safetensors"
    _flip_last_byte(newest)  # silent corruption: still a valid safetensors file, caught by state.json's sha256
    assert main(["train", "--out", str(run_dir), "--resume", "--set", "train.max_steps=60"]) == 0
    assert "step-00000040 is incomplete or corrupt; falling back" in caplog.text
    assert "resumed from" in caplog.text and "step-00000020" in caplog.text
    capsys.readouterr()
    assert_same_run(run_dir, reference)


def test_resume_with_no_config_is_one_line(tmp_path, capsys):
    err = one_error(["train", "--out", str(tmp_path / "none"), "--resume"], capsys)
    assert "nothing to resume" in err and str(tmp_path / "none") in err


# -- numerical faults ----------------------------------------------------------------------------------------

def poison(monkeypatch, bad: set[int] | None = None, from_step: int | None = None) -> None:
    """A NaN training loss at the given steps (1-based) or from a step on; dev losses stay clean."""
    real, calls = train_mod.label_smoothed_fused, [0]

    def fused(logits, target, epsilon):
        loss, nll = real(logits, target, epsilon)
        if torch.is_grad_enabled():  # a training batch (accumulate = 1: one call per step)
            calls[0] += 1
            if (bad and calls[0] in bad) or (from_step and calls[0] >= from_step):
                loss = loss * float("nan")
        return loss, nll

    monkeypatch.setattr(train_mod, "label_smoothed_fused", fused)


def test_nan_loss_and_inf_gradient_skip_the_step(corpus, tmp_path, monkeypatch, caplog):
    cfg = load_config(corpus, SETS)
    trainer = train_mod.build_trainer(cfg, tmp_path / "run")
    poison(monkeypatch, bad={5})  # step 5: NaN loss
    first = next(trainer.model.parameters())
    first.register_hook(lambda g: g * math.inf if trainer.state.step == 5 else g)  # step 6: inf gradient only
    unchanged = {}
    real_step = trainer.train_step

    def step():
        before = [p.detach().clone() for p in trainer.model.parameters()]
        adam = {i: {k: v.clone() for k, v in s.items()} for i, s in enumerate(trainer.optimizer.state.values())}
        out = real_step()
        after = trainer.optimizer.state.values()
        unchanged[trainer.state.step] = (
            all(torch.equal(a, p) for a, p in zip(before, trainer.model.parameters()))
            and all(torch.equal(adam[i][k], v) for i, s in enumerate(after) for k, v in s.items()) and len(adam) > 0)
        return out

    trainer.train_step = step
    result = trainer.fit()
    assert result["step"] == 60
    assert unchanged[5] and unchanged[6]  # weights and Adam moments untouched by the two bad steps
    assert not unchanged[4] and not unchanged[7]  # the good steps around them did update
    assert trainer.state.skipped_steps == 2 and trainer.state.bad_steps == 0
    assert int(trainer.optimizer.state[first]["step"]) == 58  # Adam counted only the good steps
    assert caplog.text.count("update skipped") == 2
    for record in metrics(tmp_path / "run"):
        assert all(math.isfinite(v) for v in record.values() if isinstance(v, float)), record
    for name, t in load_file(tmp_path / "run" / "model.safetensors").items():
        assert torch.isfinite(t).all(), name


def test_bad_steps_in_a_row_stop_the_run_and_keep_the_last_good_checkpoint(corpus, reference, tmp_path, capsys,
                                                                            monkeypatch):
    run_dir = tmp_path / "run"
    poison(monkeypatch, from_step=43)  # every step from 43 on: after the step-40 checkpoint
    err = one_error(["train", "--config", str(corpus), "--out", str(run_dir), "--set", "train.max_bad_steps=3",
                     *(a for s in SETS for a in ("--set", s))], capsys)
    assert "3 training steps in a row had a NaN/inf loss or gradient (up to step 45)" in err
    assert "step-00000040" in err
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step-00000020", "step-00000040"]
    assert checkpoint.latest_checkpoint(run_dir).name == "step-00000040"
    for path in (run_dir / "checkpoints" / "step-00000040" / "model.safetensors", run_dir / "model.safetensors"):
        assert all(torch.isfinite(t).all() for t in load_file(path).values())
    Translator.load(run_dir)  # the best weights still load (manifest intact)
    monkeypatch.undo()  # the fault is gone: --resume ends where an uninterrupted run ends
    assert main(["train", "--out", str(run_dir), "--resume", "--set", "train.max_bad_steps=5"]) == 0
    capsys.readouterr()
    assert_same_run(run_dir, reference)


def test_max_bad_steps_must_be_positive(corpus):
    with pytest.raises(AttnlabError, match="train.max_bad_steps must be at least 1, got 0"):
        load_config(corpus, ["train.max_bad_steps=0"])


# -- a full disk, a read-only folder ------------------------------------------------------------------------

def full_disk(monkeypatch, where: str) -> None:
    """ENOSPC from the write of the 2nd checkpoint (step 40), the 1st best weights (step 20), or the 4th
    log line (step 30).
    Like a real full disk, the error names no file, and half the bytes are already in the temp file."""
    real_write, seen = checkpoint.atomic_write_bytes, {"n": 0}

    def write(path: Path, data: bytes) -> None:
        is_ckpt = path.parent.name.startswith(".tmp-")
        if path.name == "model.safetensors" and is_ckpt == (where == "checkpoint"):
            seen["n"] += 1
            if seen["n"] == (2 if where == "checkpoint" else 1):
                path.with_name(f".{path.name}.tmp-{os.getpid()}").write_bytes(data[: len(data) // 2])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(path, data)

    real_open, lines = open, {"n": 0}

    def log_open(path, mode="r", *args, **kwargs):
        if Path(path).name == "metrics.jsonl" and "a" in mode:
            lines["n"] += 1
            if lines["n"] == 4:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_open(path, mode, *args, **kwargs)

    if where == "metrics":
        monkeypatch.setattr(train_mod, "open", log_open, raising=False)
    else:
        monkeypatch.setattr(checkpoint, "atomic_write_bytes", write)


@pytest.mark.parametrize("where", ["checkpoint", "best", "metrics"])
def test_full_disk_is_one_line_and_the_last_checkpoint_survives(corpus, reference, tmp_path, capsys, monkeypatch,
                                                                 where):
    named = {"checkpoint": "checkpoints/step-00000040", "best": "model.safetensors", "metrics": "metrics.jsonl"}[where]
    run_dir = tmp_path / "run"
    full_disk(monkeypatch, where)
    err = one_error(["train", "--config", str(corpus), "--out", str(run_dir), *(a for s in SETS for a in ("--set", s))],
                    capsys)
    assert "No space left on device" in err and named in err, err
    assert not list((run_dir / "checkpoints").glob(".tmp-*")) and not list(run_dir.glob(".*.tmp-*"))
    if where == "best":  # the very first save failed: nothing to keep, and nothing half-written to load
        assert checkpoint.latest_checkpoint(run_dir) is None
        with pytest.raises(AttnlabError, match="weights file missing"):
            Translator.load(run_dir)
    else:
        assert checkpoint.latest_checkpoint(run_dir).name == "step-00000020"
        Translator.load(run_dir)  # the best weights written before the fault still load and match the manifest
    monkeypatch.undo()  # space freed: the run resumes and ends as if nothing had happened
    assert main(["train", "--out", str(run_dir), "--resume"]) == 0
    capsys.readouterr()
    assert_same_run(run_dir, reference)


def test_read_only_file_system_is_one_line(corpus, tmp_path, capsys, monkeypatch):
    """EROFS (a read-only mount) from the checkpoint folder's creation: one line naming the folder."""
    import tempfile

    def read_only(*args, dir=None, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), dir)

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    err = one_error(["train", "--config", str(corpus), "--out", str(tmp_path / "run"),
                     "--set", "train.max_steps=20"], capsys)
    assert "Read-only file system" in err and "checkpoints/step-00000020" in err


@pytest.mark.skipif(os.geteuid() == 0,
                    reason="root writes through chmod (the EROFS test above covers root); run as a non-root user")
def test_read_only_run_directory(corpus, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", "--config", str(corpus), "--out", str(run_dir), "--set", "train.max_steps=20"]) == 0
    for p in [run_dir, *run_dir.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        err = one_error(["train", "--out", str(run_dir), "--resume", "--set", "train.max_steps=40"], capsys)
        assert str(run_dir) in err
        assert checkpoint.latest_checkpoint(run_dir).name == "step-00000020"
    finally:
        for p in [run_dir, *run_dir.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)


def test_resuming_a_finished_run_changes_nothing(run_copy, reference, capsys):
    """Killed after its last checkpoint (say, while the interpreter exits): --resume has nothing to add."""
    assert main(["train", "--out", str(run_copy), "--resume"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 60
    assert_same_run(run_copy, reference)


def test_sigint_saves_a_checkpoint_exits_0_and_the_resumed_weights_match(corpus, reference, tmp_path):
    """SIGINT (Ctrl-C) mid-run: a checkpoint at that step and exit 0 (SIGTERM: test_cli.py); resumed, the
    step-60 weights and Adam state equal the uninterrupted run's (the extra evaluation uses no randomness)."""
    import signal

    run_dir = tmp_path / "run"
    argv = [sys.executable, "-m", "attnlab", "train", "--config", str(corpus), "--out", str(run_dir),
            *(a for s in SETS for a in ("--set", s))]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    metrics_file = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics_file.is_file() and metrics_file.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0
    result = json.loads(out)
    assert result["reason"] == "stopped by SIGINT" and 10 <= result["step"] < 60
    assert checkpoint.latest_checkpoint(run_dir).name == f"step-{result['step']:08d}"
    assert main(["train", "--out", str(run_dir), "--resume"]) == 0
    for f in ("model.safetensors", "optimizer.safetensors"):
        a, b = (d / "checkpoints" / "step-00000060" / f for d in (run_dir, reference))
        assert a.read_bytes() == b.read_bytes(), f
