"""End to end through the command line: train -> translate -> evaluate on a tiny corpus, exact resume,
and bad input giving one clear line and a non-zero exit."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from attnlab.cli import main


def run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def trained(tiny_corpus, tmp_path_factory, capsys) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    code, out, err = run(["train", "--config", str(tiny_corpus["config"]), "--out", str(run_dir)], capsys)
    assert code == 0, err
    return run_dir


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_train_translate_evaluate(trained, tiny_corpus, capsys, monkeypatch, tmp_path):
    records = _metrics(trained)
    losses = [r["loss"] for r in records if "loss" in r]
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert any("dev_bleu" in r for r in records)
    for name in ("config.toml", "model.safetensors", "manifest.json", "tokenizer/joint.model"):
        assert (trained / name).is_file()
    # the run directory is self-contained: copy it elsewhere and it still translates
    moved = tmp_path / "elsewhere"
    shutil.copytree(trained, moved)
    src = tmp_path / "in.txt"
    src.write_text("一二三\n\n五六\n", encoding="utf-8")
    code, out, err = run(["translate", "--model", str(moved), "--input", str(src), "--beam", "2"], capsys)
    assert code == 0, err
    assert len(out.splitlines()) == 3 and out.splitlines()[1] == ""  # empty line stays empty
    code, out, err = run(["evaluate", "--model", str(trained), "--split", str(tiny_corpus["test"]), "--beam", "1"], capsys)
    assert code == 0, err
    result = json.loads(out)
    distinct = {line.split("\t")[1] for line in tiny_corpus["test"].read_text(encoding="utf-8").splitlines()[1:]}
    assert result["sentences"] == len(distinct) and "tok:13a" in result["bleu_signature"] and 0 <= result["bleu"] <= 100


def test_resume_gives_the_same_losses(tiny_corpus, tmp_path, capsys):
    full, part = tmp_path / "full", tmp_path / "part"
    assert run(["train", "--config", str(tiny_corpus["config"]), "--out", str(full)], capsys)[0] == 0
    assert run(["train", "--config", str(tiny_corpus["config"]), "--out", str(part),
                "--set", "train.max_steps=40"], capsys)[0] == 0
    assert run(["train", "--out", str(part), "--resume", "--set", "train.max_steps=60"], capsys)[0] == 0
    strip = lambda rs: [{k: v for k, v in r.items() if k not in ("tok_s", "elapsed_s")} for r in rs]
    assert strip(_metrics(part)) == strip(_metrics(full))
    assert (full / "model.safetensors").read_bytes() == (part / "model.safetensors").read_bytes()


def test_long_input_is_truncated_with_one_warning(trained, capsys, tmp_path, caplog):
    src = tmp_path / "long.txt"
    src.write_text("一二" * 400 + "\n" + "三" * 900 + "\n四\n", encoding="utf-8")
    code, out, _ = run(["translate", "--model", str(trained), "--input", str(src), "--beam", "1"], capsys)
    assert code == 0 and len(out.splitlines()) == 3
    assert sum("truncated" in r.message for r in caplog.records) == 1


@pytest.mark.parametrize("case", ["missing_dir", "corrupt_weights", "missing_tokenizer", "bad_utf8", "bad_beam"])
def test_bad_input_one_clear_line(trained, capsys, tmp_path, case):
    model = trained
    src = tmp_path / "in.txt"
    src.write_text("一二\n", encoding="utf-8")
    if case == "missing_dir":
        model = tmp_path / "nope"
    elif case == "corrupt_weights":
        data = (trained / "model.safetensors").read_bytes()
        (trained / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif case == "missing_tokenizer":
        (trained / "tokenizer" / "joint.model").unlink()
    elif case == "bad_utf8":
        src.write_bytes(b"\xe4\xb8\n\xff\xfe\n")
    args = ["translate", "--model", str(model), "--input", str(src)] + (["--beam", "0"] if case == "bad_beam" else [])
    code, out, err = run(args, capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("attnlab: error: ")


def test_corrupt_weights_without_manifest_still_named(trained, capsys, tmp_path):
    (trained / "manifest.json").unlink()
    (trained / "model.safetensors").write_bytes(b"garbage")
    code, _, err = run(["translate", "--model", str(trained), "--input", str(trained / "config.toml")], capsys)
    assert code == 2 and "model.safetensors" in err


@pytest.mark.parametrize("override,message", [
    ("model.nonsense=1", "unknown config key 'model.nonsense'"),
    ("direction=fr-en", "direction must be one of"),
    ("model.n_heads=5", "must divide"),
    ("train.max_steps=abc", "must be an integer"),
])
def test_bad_config(tiny_corpus, tmp_path, capsys, override, message):
    code, _, err = run(["train", "--config", str(tiny_corpus["config"]), "--out", str(tmp_path / "r"), "--set", override], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_empty_corpus(tiny_corpus, tmp_path, capsys):
    empty = tmp_path / "empty.tsv"
    empty.write_text("", encoding="utf-8")
    code, _, err = run(["train", "--config", str(tiny_corpus["config"]), "--out", str(tmp_path / "r"),
                        "--set", f"data.train={empty}"], capsys)
    assert code == 2 and "no sentence pairs" in err


def test_missing_input_and_unwritable_output(trained, tiny_corpus, tmp_path, capsys):
    code, _, err = run(["translate", "--model", str(trained), "--input", str(tmp_path / "none.txt")], capsys)
    assert code == 2 and err.strip() == f"attnlab: error: No such file or directory: {tmp_path / 'none.txt'}"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run(["train", "--config", str(tiny_corpus["config"]), "--out", str(blocker / "run")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and str(blocker) in err


def test_refuses_to_overwrite_a_run(trained, tiny_corpus, capsys):
    code, _, err = run(["train", "--config", str(tiny_corpus["config"]), "--out", str(trained)], capsys)
    assert code == 2 and "--resume" in err


def test_subprocess_error_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "attnlab", "translate", "--model", str(tmp_path / "none")],
                          input=b"x\n", capture_output=True)
    assert proc.returncode == 2
    assert b"Traceback" not in proc.stderr and proc.stderr.decode().count("\n") == 1


def test_attention_maps_are_the_models(trained):
    from attnlab.translate.pytorch import Translator

    t = Translator.load(trained)
    maps = t.attention("一二三", beam=1)
    s, tt = len(maps.source), len(maps.target)
    assert maps.cross.shape == (1, 4, tt, s) and maps.encoder.shape == (1, 4, s, s) and maps.decoder.shape == (1, 4, tt, tt)
    for w in (maps.cross, maps.encoder, maps.decoder):
        torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]))
    assert maps.decoder.triu(1).abs().max() == 0  # causal: no weight on later positions
    assert maps.translation == t.translate(["一二三"], beam=1)[0]


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tiny_corpus, tmp_path):
    import signal
    import time

    run_dir = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "attnlab", "--quiet", "train", "--config", str(tiny_corpus["config"]),
                             "--out", str(run_dir), "--set", "train.max_steps=100000", "--set", "train.eval_every=100000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.is_file() and metrics.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    result = json.loads(out)
    assert result["reason"] == "stopped by SIGTERM"
    ckpts = sorted((run_dir / "checkpoints").glob("step-*"))
    assert ckpts and ckpts[-1].name == f"step-{result['step']:08d}" and result["step"] < 100000
