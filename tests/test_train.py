"""The trainer: learning-rate schedules as tables, budget-fitted decay, checkpoint averaging, and a
run that provably learns (exact translations of the tiny digits corpus after a fixed number of steps)."""

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from attnlab import checkpoint
from attnlab.cli import main
from attnlab.config import load_config
from attnlab.errors import AttnlabError
from attnlab.schedule import budget_lr, inverse_sqrt_lr, run_progress


@pytest.mark.parametrize("step, expected", [
    (1, 256**-0.5 * 1 * 4000**-1.5),  # warm-up: linear in the step
    (2000, 256**-0.5 * 2000 * 4000**-1.5),
    (4000, 256**-0.5 * 4000**-0.5),  # the peak, where both branches meet
    (16000, 256**-0.5 * 16000**-0.5),  # then inverse square root
])
def test_inverse_sqrt_is_the_papers(step, expected):
    assert inverse_sqrt_lr(step, 256, 4000) == pytest.approx(expected)


@pytest.mark.parametrize("shape, progress, expected", [
    ("cosine", 0.0, 0.0),
    ("cosine", 0.05, 0.5),  # halfway through a warm-up of 0.1
    ("cosine", 0.1, 1.0),  # the peak
    ("cosine", 0.55, 0.5),  # halfway through the decay: cos(π/2)
    ("cosine", 1.0, 0.0),
    ("cosine", 1.7, 0.0),  # past the budget: clamped
    ("linear", 0.55, 0.5),
    ("linear", 0.775, 0.25),
    ("linear", 1.0, 0.0),
])
def test_budget_schedule_table(shape, progress, expected):
    assert budget_lr(progress, 1.0, 0.1, shape) == pytest.approx(expected, abs=1e-12)


def test_budget_schedule_ends_at_the_final_ratio():
    assert budget_lr(1.0, 2e-3, 0.1, "cosine", final_ratio=0.1) == pytest.approx(2e-4)
    assert budget_lr(0.0, 2e-3, 0.0, "linear") == pytest.approx(2e-3)  # no warm-up: starts at the peak


def test_progress_is_the_furthest_limit():
    assert run_progress(50, 0.0, 100, 0.0, 0) == 0.5
    assert run_progress(50, 90.0, 100, 2.0, 0) == 0.75  # 90 s of a 2-minute budget is further along
    assert run_progress(30, 0.0, 0, 0.0, 60) == 0.5  # max_epochs turned into steps
    with pytest.raises(ValueError, match="max_steps"):
        run_progress(1, 1.0, 0, 0.0, 0)


def test_budget_schedule_needs_a_budget(tiny_corpus):
    with pytest.raises(AttnlabError, match="decays over the run's budget"):
        load_config(tiny_corpus["config"], ["train.schedule=cosine", "train.max_steps=0"])
    with pytest.raises(AttnlabError, match="train.schedule must be one of"):
        load_config(tiny_corpus["config"], ["train.schedule=step"])


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_cosine_run_warms_up_and_decays_to_zero_at_max_steps(tiny_corpus, tmp_path):
    run = tmp_path / "run"
    assert main(["-q", "train", "--config", str(tiny_corpus["config"]), "--out", str(run), "--set", "train.schedule=cosine",
                 "--set", "train.lr_peak=1e-3", "--set", "train.warmup_fraction=0.25"]) == 0
    lrs = {r["step"]: r["lr"] for r in _metrics(run) if "lr" in r}  # logged every 10 of 60 steps
    assert lrs[10] == pytest.approx(1e-3 * 9 / 15)  # step 10 is taken at progress 9/60, in the warm-up
    assert lrs[30] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * (29 / 60 - 0.25) / 0.75)))
    assert lrs[60] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * (59 / 60 - 0.25) / 0.75)))
    assert lrs[60] < 1e-5


def test_average_last_keeps_n_checkpoints_and_logs_the_average(tiny_corpus, tmp_path):
    run = tmp_path / "run"
    assert main(["-q", "train", "--config", str(tiny_corpus["config"]), "--out", str(run),
                 "--set", "train.average_last=3"]) == 0
    ckpts = checkpoint.intact_checkpoints(run)
    assert [c.name for c in ckpts] == ["step-00000020", "step-00000040", "step-00000060"]
    averaged = [r for r in _metrics(run) if "averaged_steps" in r]
    assert len(averaged) == 1 and averaged[0]["averaged_steps"] == [20, 40, 60]
    # the average is the element-wise mean of the three checkpoints
    weights = [load_file(c / checkpoint.WEIGHTS_FILE) for c in ckpts]
    mean = checkpoint.average_weights(ckpts)
    for name, t in mean.items():
        torch.testing.assert_close(t, sum(w[name] for w in weights) / 3)
    scores = json.loads((run / checkpoint.SCORES_FILE).read_text())
    best = load_file(run / checkpoint.WEIGHTS_FILE)
    if averaged[0]["best"]:  # kept because its dev scores beat every single checkpoint's
        assert scores["averaged_steps"] == [20, 40, 60]
        torch.testing.assert_close(best["src_embed.weight"], mean["src_embed.weight"])
    else:
        assert "averaged_steps" not in scores


def test_average_command_writes_a_runnable_model(tiny_corpus, tmp_path, capsys):
    run, out = tmp_path / "run", tmp_path / "avg"
    assert main(["-q", "train", "--config", str(tiny_corpus["config"]), "--out", str(run),
                 "--set", "train.average_last=3"]) == 0
    assert main(["-q", "average", "--run", str(run), "--last", "2", "--out", str(out)]) == 0
    capsys.readouterr()
    mean = checkpoint.average_weights(checkpoint.intact_checkpoints(run)[-2:])
    torch.testing.assert_close(load_file(out / checkpoint.WEIGHTS_FILE)["src_embed.weight"], mean["src_embed.weight"])
    src = tmp_path / "in.txt"
    src.write_text("一二\n\n三\n", encoding="utf-8")
    assert main(["-q", "translate", "--model", str(out), "--input", str(src)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert main(["-q", "average", "--run", str(run), "--last", "9", "--out", str(tmp_path / "x")]) == 2
    assert "only 3 intact checkpoints" in capsys.readouterr().err


# After 500 steps the digits model translates these exactly (greedy and beam): training learns.
LEARNED = [("一二三", "one two three"), ("九八七六五", "nine eight seven six five"), ("零", "zero"),
           ("四四", "four four"), ("五零二一", "five zero two one")]


def test_training_learns_the_digits_corpus(tiny_corpus, tmp_path, capsys):
    run = tmp_path / "run"
    sets = ["train.max_steps=500", "train.schedule=cosine", "train.lr_peak=2e-3", "train.eval_every=250",
            "train.max_tokens=800", "model.d_model=64", "model.d_ff=128", "model.n_encoder_layers=2",
            "model.n_decoder_layers=2"]
    assert main(["-q", "train", "--config", str(tiny_corpus["config"]), "--out", str(run),
                 *[x for s in sets for x in ("--set", s)]]) == 0
    src = tmp_path / "in.txt"
    src.write_text("".join(zh + "\n" for zh, _ in LEARNED), encoding="utf-8")
    capsys.readouterr()
    for beam in ("1", "4"):
        assert main(["-q", "translate", "--model", str(run), "--input", str(src), "--beam", beam]) == 0
        assert capsys.readouterr().out.splitlines() == [en for _, en in LEARNED]


def test_subword_sampling_changes_each_epoch_and_resumes_bit_for_bit(tiny_corpus, tmp_path):
    sets = ["--set", "train.subword_alpha=0.3", "--set", "tokenizer.vocab_size=120"]  # room for other segmentations
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(["-q", "train", "--config", str(tiny_corpus["config"]), "--out", str(full), *sets]) == 0
    assert main(["-q", "train", "--config", str(tiny_corpus["config"]), "--out", str(part), *sets,
                 "--set", "train.max_steps=40"]) == 0
    assert main(["-q", "train", "--out", str(part), "--resume", "--set", "train.max_steps=60"]) == 0
    strip = lambda rs: [{k: v for k, v in r.items() if k not in ("tok_s", "elapsed_s")} for r in rs]
    assert strip(_metrics(part)) == strip(_metrics(full))
    assert (full / "model.safetensors").read_bytes() == (part / "model.safetensors").read_bytes()
    assert max(r["epoch"] for r in _metrics(full)) >= 2  # the run crossed epoch boundaries


def test_sampled_segmentations_differ_by_seed_and_repeat_with_it(tmp_path):
    from attnlab.config import TokenizerConfig
    from attnlab.tokenizer import Tokenizer
    from conftest import number_pairs

    tok = Tokenizer.train(number_pairs(300, 1), TokenizerConfig(vocab_size=120), tmp_path / "tok")
    texts = ["seven eight nine three", "一二三四五六七八九零"] * 20

    def sample(seed):
        Tokenizer.seed_sampling(seed)
        return tok.encode_src(texts, sample_alpha=0.3)

    assert sample(1) == sample(1)
    assert sample(1) != sample(2)
    assert len({tuple(x) for x in sample(1)}) > 2  # each text is sampled anew
    assert tok.encode_src(texts) == tok.encode_src(texts, sample_alpha=0.0)
    best = tok.encode_src(texts[:2])
    assert all(tok.src.decode(x) == t for x, t in zip(sample(3), texts))  # every sample spells the same text
    assert best[0] != [] and best[1] != []
