"""The trainer: learning-rate schedules as tables, budget-fitted decay, checkpoint averaging, gradient
accumulation equal to one concatenated batch, the run state and metrics log it keeps, and a run that
provably learns (exact translations of the tiny digits corpus after a fixed number of steps)."""

import copy
import dataclasses
import json
import math
import platform
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from attnlab import checkpoint
from attnlab.cli import main
from attnlab.config import load_config
from attnlab.errors import AttnlabError
from attnlab.hardware import keep_freed_memory
from attnlab.schedule import budget_lr, cooldown_factor, inverse_sqrt_lr, run_progress
from attnlab.train import DevScores, MetricsLog, StepResult, TrainState, build_trainer, make_optimizer


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


@pytest.mark.parametrize("progress, fraction, expected", [
    (0.5, 0.2, 1.0), (0.8, 0.2, 1.0),  # before the last fifth: the paper's rate untouched
    (0.9, 0.2, 0.5), (1.0, 0.2, 0.0), (1.3, 0.2, 0.0),  # a linear ramp to 0, clamped past the end
    (0.25, 1.0, 0.75), (0.9, 0.0, 1.0),  # all the run; none
])
def test_cooldown_table(progress, fraction, expected):
    assert cooldown_factor(progress, fraction) == pytest.approx(expected)


def test_cooldown_run_follows_the_paper_then_ramps_to_zero(tiny_corpus, tmp_path):
    run = tmp_path / "run"
    assert main(["-q", "train", "--config", str(tiny_corpus["config"]), "--out", str(run),
                 "--set", "train.cooldown_fraction=0.5"]) == 0
    lrs = {r["step"]: r["lr"] for r in _metrics(run) if "lr" in r}  # 60 steps, warm-up 30, ×2, d_model 32
    paper = lambda step: inverse_sqrt_lr(step, 32, 30, 2.0)
    assert lrs[20] == pytest.approx(paper(20))  # step 20 is taken at progress 19/60: before the cool-down
    assert lrs[40] == pytest.approx(paper(40) * (1 - 39 / 60) / 0.5)
    assert lrs[60] == pytest.approx(paper(60) * (1 - 59 / 60) / 0.5)
    with pytest.raises(AttnlabError, match="cooldown_fraction cools the inverse_sqrt schedule down"):
        load_config(tiny_corpus["config"], ["train.cooldown_fraction=0.2", "train.max_steps=0"])
    with pytest.raises(AttnlabError, match="cooldown_fraction cools"):
        load_config(tiny_corpus["config"], ["train.cooldown_fraction=0.2", "train.schedule=cosine"])
    with pytest.raises(AttnlabError, match="cooldown_fraction must be in"):
        load_config(tiny_corpus["config"], ["train.cooldown_fraction=1.5"])


def test_budget_schedule_needs_a_budget(tiny_corpus):
    with pytest.raises(AttnlabError, match="decays over the run's budget"):
        load_config(tiny_corpus["config"], ["train.schedule=cosine", "train.max_steps=0"])
    with pytest.raises(AttnlabError, match="train.schedule must be one of"):
        load_config(tiny_corpus["config"], ["train.schedule=step"])
    with pytest.raises(AttnlabError, match="subword_alpha samples unigram segmentations"):
        load_config(tiny_corpus["config"], ["train.subword_alpha=0.1", "tokenizer.model_type=bpe"])


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


# After 500 steps the digits model translates these exactly (greedy and beam): training learns. Only 零 and
# 四四 are training sentences; 九八七六五 is the hard one (unseen, and 五六 is twice as frequent as 六五 in the
# training pairs: without dropout, rounding-level changes to the optimizer flip it to "... five six").
LEARNED = [("一二三", "one two three"), ("九八七六五", "nine eight seven six five"), ("零", "zero"),
           ("四四", "four four"), ("五零二一", "five zero two one")]


def test_training_learns_the_digits_corpus(tiny_corpus, tmp_path, capsys):
    run = tmp_path / "run"
    sets = ["train.max_steps=500", "train.schedule=cosine", "train.lr_peak=2e-3", "train.eval_every=250",
            "train.max_tokens=800", "model.d_model=64", "model.d_ff=128", "model.n_encoder_layers=2",
            "model.n_decoder_layers=2", "model.dropout=0.1"]
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
    import random
    import subprocess
    import sys

    from attnlab.config import TokenizerConfig
    from attnlab.tokenizer import Tokenizer
    from conftest import number_pairs

    tok = Tokenizer.train(number_pairs(300, 1), TokenizerConfig(vocab_size=120), tmp_path / "tok")
    texts = ["seven eight nine three", "一二三四五六七八九零"] * 20

    def sample(seed):
        return tok.encode_src(texts, sample_alpha=0.3, rng=random.Random(seed))

    assert sample(1) == sample(1)
    assert sample(1) != sample(2)
    assert len({tuple(x) for x in sample(1)}) > 2  # each text is drawn anew
    assert tok.encode_src(texts) == tok.encode_src(texts, sample_alpha=0.0)
    assert all(tok.src.decode(x) == t for x, t in zip(sample(3), texts))  # every draw spells the same text
    # the same seed draws the same segmentations in another process (a resumed run is one)
    code = ("import random, sys; from pathlib import Path; from attnlab.tokenizer import Tokenizer; "
            f"t = Tokenizer.load(Path({str(tmp_path / 'tok')!r})); "
            f"print(t.encode_src({texts!r}, sample_alpha=0.3, rng=random.Random(1)))")
    other = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert other.strip() == str(sample(1))


# -- accumulation ------------------------------------------------------------------------------------

def _one_step(trainer, batches=None):
    """Take one optimizer step (on `batches` instead of the trainer's own, if given); the gradients it
    applied, the weights after it, and the batches it used."""
    used, grads = [], []
    real = trainer._next_batches

    def take():
        used.extend(batches if batches is not None else real())
        return used

    trainer._next_batches = take
    trainer.optimizer.register_step_pre_hook(
        lambda *_: grads.extend(p.grad.clone() for p in trainer.model.parameters()))
    out = trainer.train_step()
    return out, grads, [p.detach().clone() for p in trainer.model.parameters()], used


def test_accumulating_two_batches_is_one_concatenated_batch(tiny_corpus, tmp_path):
    """train.accumulate = 2 takes the step that one batch holding both batches' pairs takes: the same
    loss, gradients and weights after it (up to float summation order)."""
    sets = ["train.max_tokens=200"]  # small batches, so that two of them differ in length
    two = build_trainer(load_config(tiny_corpus["config"], [*sets, "train.accumulate=2"]), tmp_path / "two")
    one = build_trainer(load_config(tiny_corpus["config"], [*sets, "train.accumulate=1"]), tmp_path / "one")
    initial = [p.detach().clone() for p in two.model.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(initial, one.model.parameters()))  # the same seed
    out_two, grads_two, after_two, used = _one_step(two)
    longest = [max(len(x) for x in src) for src, _, _ in used]
    assert len(used) == 2 and longest[0] != longest[1]  # the joined batch pads the shorter one's sources
    joined = [(used[0][0] + used[1][0], used[0][1] + used[1][1], None)]
    out_one, grads_one, after_one, _ = _one_step(one, joined)
    assert out_two.tokens == out_one.tokens and out_two.lr == out_one.lr
    assert out_two.loss == pytest.approx(out_one.loss, rel=1e-5)
    assert len(grads_two) == len(grads_one) > 0
    for g2, g1 in zip(grads_two, grads_one):
        torch.testing.assert_close(g2, g1, rtol=1e-4, atol=1e-6)
    # Adam's first update is lr·g/(|g| + ε): ±lr for any gradient, so where the exact gradient is zero
    # (the key projection's bias, as softmax ignores a constant added to every score; units ReLU turned
    # off) float noise picks the sign. Compare the weights wherever the gradient is not noise.
    compared = total = 0
    for w2, w1, g in zip(after_two, after_one, grads_one):
        signal = g.abs() > 1e-6
        torch.testing.assert_close(w2[signal], w1[signal], rtol=1e-4, atol=1e-6)
        compared, total = compared + int(signal.sum()), total + g.numel()
    assert compared > 0.9 * total
    assert not all(torch.equal(w, i) for w, i in zip(after_two, initial))  # the step did move the weights


# -- run state and the metrics log -------------------------------------------------------------------

STATE_JSON_KEYS = ["step", "epoch", "position", "best_bleu", "best_dev_loss", "train_seconds", "bad_steps",
                   "skipped_steps"]  # a checkpoint's state.json, beside "optimizer" and "sha256"


def test_train_state_keeps_state_json_keys_and_reads_older_files():
    assert list(dataclasses.asdict(TrainState())) == STATE_JSON_KEYS
    state = TrainState(step=40, epoch=5, position=3, best_bleu=1.5, best_dev_loss=2.25, train_seconds=9.5,
                       bad_steps=1, skipped_steps=2)
    saved = json.dumps(dict(dataclasses.asdict(state), optimizer={"param_groups": []}, sha256={"x": "0"}))
    assert TrainState.from_dict(json.loads(saved)) == state
    assert TrainState.from_dict(json.loads(json.dumps(dataclasses.asdict(TrainState())))) == TrainState()  # inf survives JSON
    older = {"step": 20, "epoch": 2, "position": 0, "best_bleu": -1.0, "best_dev_loss": 3.0, "train_seconds": 1.0}
    assert TrainState.from_dict(older) == TrainState(step=20, epoch=2, best_dev_loss=3.0, train_seconds=1.0)


@pytest.mark.parametrize("position, epoch_batches, expected", [
    (0, 3, (0, 1)),
    (1, 3, (0, 2)),
    (2, 3, (1, 0)),  # the epoch's last batch: the next epoch begins
    (0, 1, (1, 0)),
])
def test_train_state_takes_batches_across_epochs(position, epoch_batches, expected):
    state = TrainState(position=position)
    state.take_batch(epoch_batches)
    assert (state.epoch, state.position) == expected


@pytest.mark.parametrize("best, scores, improves", [
    ((-1.0, math.inf), DevScores(5.0, 148.4, 0.0), True),  # the first evaluation always improves
    ((2.0, 3.0), DevScores(2.5, 12.2, 3.0), True),  # higher BLEU wins even with a higher loss
    ((2.0, 3.0), DevScores(2.0, 7.4, 1.0), False),
    ((0.0, 3.0), DevScores(2.9, 18.2, 0.0), True),  # a BLEU tie goes to the lower dev loss
    ((0.0, 3.0), DevScores(3.0, 20.1, 0.0), False),  # a full tie keeps the old best
    ((-1.0, 3.0), DevScores(2.9, 18.2, None), True),  # BLEU off: by dev loss alone
])
def test_train_state_keeps_the_best_by_bleu_then_dev_loss(best, scores, improves):
    state = TrainState(best_bleu=best[0], best_dev_loss=best[1])
    assert state.improves(scores) is improves
    expected = (scores.bleu if scores.bleu is not None else -1.0, scores.loss) if improves else best
    assert (state.best_bleu, state.best_dev_loss) == expected


def test_metrics_log_window_is_token_weighted(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    log.add(StepResult(loss=2.0, nll=1.0, tokens=10, lr=0.1, finite=True))
    log.add(StepResult(loss=4.0, nll=3.0, tokens=30, lr=0.1, finite=True))
    record = log.flush(TrainState(step=7, epoch=1), lr=0.1, elapsed_total=12.34)
    assert record["loss"] == 3.5 and record["ppl"] == round(math.exp(2.5), 2)
    assert (record["step"], record["epoch"], record["lr"], record["elapsed_s"]) == (7, 1, 0.1, 12.3)
    assert log.steps == log.tokens == 0  # a new window
    assert _metrics(tmp_path) == [record]


def test_metrics_log_truncates_to_the_resumed_checkpoint(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = [{"step": 10, "loss": 3.0}, {"step": 20, "loss": 2.5}, {"step": 20, "dev_loss": 2.4, "best": True},
             {"step": 30, "loss": 2.0}]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines) + '{"step": 40, "lo', encoding="utf-8")  # killed mid-line
    assert MetricsLog(path).truncate(20) == lines[2]  # that checkpoint's own evaluation
    assert _metrics(tmp_path) == lines[:3]
    assert MetricsLog(path).truncate(0) == {} and path.read_text() == ""
    assert MetricsLog(tmp_path / "none.jsonl").truncate(5) == {}


def test_metrics_log_of_another_rank_writes_nothing(tmp_path):
    MetricsLog(tmp_path / "metrics.jsonl", write=False).append({"step": 1})
    assert not (tmp_path / "metrics.jsonl").exists()


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_fused_optimizer_steps_like_the_per_parameter_loop(weight_decay):
    """make_optimizer uses torch's fused Adam(W) kernel: the same updates as the plain loop."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.LayerNorm(5), torch.nn.Linear(5, 3))
    twin = copy.deepcopy(model)
    opt = make_optimizer(model, weight_decay)
    assert all(g["fused"] for g in opt.param_groups)
    ref_groups = [{"params": [p for p in twin.parameters() if p.dim() >= 2], "weight_decay": weight_decay},
                  {"params": [p for p in twin.parameters() if p.dim() < 2], "weight_decay": 0.0}]
    ref_cls = torch.optim.AdamW if weight_decay > 0 else torch.optim.Adam
    ref = ref_cls(ref_groups, lr=0.0, betas=(0.9, 0.98), eps=1e-9, fused=False, foreach=False)
    for step in range(5):
        x = torch.randn(8, 6)
        for m, o in ((model, opt), (twin, ref)):
            for g in o.param_groups:
                g["lr"] = 1e-2 * (step + 1)
            m(x).square().sum().backward()
            o.step()
            o.zero_grad()
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's; elsewhere the call says False")
def test_keep_freed_memory_is_set_on_glibc():
    assert keep_freed_memory() is True


def test_dictionary_pairs_join_the_training_pairs_but_not_the_tokenizer(tiny_corpus, tmp_path):
    """`data.dictionary`: word pairs whose headword occurs in the training sentences follow them (oriented
    by direction); the tokenizer is the one trained on the sentences alone."""
    from attnlab.distributed import setup
    from attnlab.prepare import prepare_run

    words = tmp_path / "words" / "train.tsv"
    words.parent.mkdir()
    words.write_text("三\tthree\n龙\tdragon\n七\tseven\n", encoding="utf-8")  # 龙 is not in the digits corpus
    base = prepare_run(load_config(tiny_corpus["config"]), tmp_path / "base", setup("cpu"))
    run = prepare_run(load_config(tiny_corpus["config"], [f"data.dictionary={words}"]), tmp_path / "dict", setup("cpu"))
    assert run.train.data.pairs == base.train.data.pairs + [("三", "three"), ("七", "seven")]
    assert len(run.train.current.batches) >= len(base.train.current.batches)
    assert run.tokenizer.src.serialized_model_proto() == base.tokenizer.src.serialized_model_proto()
    everything = load_config(tiny_corpus["config"], [f"data.dictionary={words}", "data.dictionary_scope=all",
                                                      "direction=en-zh"])
    run = prepare_run(everything, tmp_path / "all", setup("cpu"))
    assert run.train.data.pairs[-3:] == [("three", "三"), ("dragon", "龙"), ("seven", "七")]
    with pytest.raises(AttnlabError, match="data.dictionary_scope must be corpus or all, got 'some'"):
        load_config(tiny_corpus["config"], ["data.dictionary_scope=some"])


def test_extra_pairs_join_the_training_pairs_but_not_the_tokenizer(tiny_corpus, tmp_path):
    """`data.extra` (e.g. back-translations, as two aligned files): its pairs follow the training pairs as
    (source, target); the tokenizer is the one trained on data.train alone; a model of both directions
    refuses it."""
    from attnlab.distributed import setup
    from attnlab.prepare import prepare_run

    (tmp_path / "zh.txt").write_text("三七\n九\n", encoding="utf-8")
    (tmp_path / "en.txt").write_text("three seven\nnine\n", encoding="utf-8")
    extra = f"data.extra={tmp_path / 'zh.txt'},{tmp_path / 'en.txt'}"
    base = prepare_run(load_config(tiny_corpus["config"]), tmp_path / "base", setup("cpu"))
    run = prepare_run(load_config(tiny_corpus["config"], [extra]), tmp_path / "extra", setup("cpu"))
    assert run.train.data.pairs == base.train.data.pairs + [("三七", "three seven"), ("九", "nine")]
    assert run.tokenizer.src.serialized_model_proto() == base.tokenizer.src.serialized_model_proto()
    with pytest.raises(AttnlabError, match="data.extra cannot join a model of both directions"):
        load_config(tiny_corpus["config"], [extra, "bidirectional=true"])
