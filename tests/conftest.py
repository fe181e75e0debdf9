"""Shared fixtures: a tiny parallel corpus and a tiny config, built in the test's temp folder; and the
Hypothesis profiles.

Hypothesis profiles, chosen by $HYPOTHESIS_PROFILE:
- "ci" (the default, `make test` and CI): derandomised, so every run tries the same examples and a red
  run is a change in the code, not a new draw; no example database is written.
- "thorough" (`make test-reliability`): a fresh random search each run; failures are kept in
  .pytest_cache/hypothesis and replayed first next time.
A test's own `settings(max_examples=...)` inherits everything else (derandomize, database) from the profile.
"""

import os
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

ROOT = Path(__file__).resolve().parents[1]

settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", deadline=None, print_blob=True,
                          database=DirectoryBasedExampleDatabase(ROOT / ".pytest_cache" / "hypothesis"),
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ZH = "零一二三四五六七八九"
EN = "zero one two three four five six seven eight nine".split()


def number_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    """Digits spelled in Chinese characters -> the same digits as English words."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        digits = [rng.randrange(10) for _ in range(rng.randint(1, 5))]
        pairs.append(("".join(ZH[d] for d in digits), " ".join(EN[d] for d in digits)))
    return pairs


def write_tatoeba(path: Path, pairs: list[tuple[str, str]], start_id: int = 1) -> Path:
    lines = ["zh_id\tzh\ten_id\ten"]
    lines += [f"{start_id + i}\t{zh}\t{100000 + start_id + i}\t{en}" for i, (zh, en) in enumerate(pairs)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


TINY_CONFIG = """
direction = "zh-en"
[model]
d_model = 32
n_heads = 4
d_ff = 64
n_encoder_layers = 1
n_decoder_layers = 1
dropout = 0.0
[tokenizer]
vocab_size = 40
[data]
train = "{train}"
dev = "{dev}"
test = "{test}"
[train]
max_tokens = 400
lr_scale = 2.0
warmup_steps = 30
max_steps = 60
eval_every = 20
log_every = 10
dev_bleu_sentences = 20
seed = 3
threads = 1
[decode]
beam = 2
"""


def write_tiny_corpus(root: Path) -> dict[str, Path]:
    """The number corpus (train/dev/test TSVs) and a tiny config pointing at it, in `root`."""
    paths = {
        "train": write_tatoeba(root / "train.tsv", number_pairs(300, 1)),
        "dev": write_tatoeba(root / "dev.tsv", number_pairs(20, 2), 5000),
        "test": write_tatoeba(root / "test.tsv", number_pairs(20, 3), 6000),
    }
    config = root / "tiny.toml"
    config.write_text(TINY_CONFIG.format(**{k: str(v) for k, v in paths.items()}), encoding="utf-8")
    paths["config"] = config
    return paths


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> dict[str, Path]:
    return write_tiny_corpus(tmp_path)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A run directory trained once per pytest run on the tiny number corpus (a few seconds), through
    the command line, so it also holds what `attnlab train` writes after training (report.html). 200 steps:
    enough that its searches give non-empty digit sequences (after 60, beam search can end at once)."""
    from attnlab.cli import main

    root = tmp_path_factory.mktemp("tiny-run")
    config = write_tiny_corpus(root)["config"]
    run_dir = root / "run"
    assert main(["-q", "train", "--config", str(config), "--out", str(run_dir), "--set", "train.max_steps=200"]) == 0
    return run_dir


@pytest.fixture(scope="session")
def chromium_env(tmp_path_factory) -> dict[str, str]:
    """The environment for a test's Chromium: fontconfig also finds the CJK font that the pictures use
    (attnlab/viz/fonts.py), so that Chinese shows as Chinese in screenshots with no system CJK font."""
    from attnlab.viz.fonts import packaged_font

    env = dict(os.environ)
    font = packaged_font()
    if font is None:
        return env
    conf = tmp_path_factory.mktemp("fontconfig") / "fonts.conf"
    conf.write_text('<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
                    '  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>\n'
                    f"  <dir>{font.parent}</dir>\n  <cachedir>{conf.parent / 'cache'}</cachedir>\n</fontconfig>\n",
                    encoding="utf-8")
    env["FONTCONFIG_FILE"] = str(conf)
    return env
