"""The studies of attnlab.experiments, each at a tiny size: the training studies through `attnlab experiment`
on the number corpus, the others on conftest's tiny trained run; their measurements against references
(the model's own attention weights, hand-worked n-gram counts, a linear map's invariants)."""

import json
import math

import numpy as np
import pytest
import torch

from attnlab.cli import main
from attnlab.config import POSITIONS, Config, ModelConfig
from attnlab.experiments import context, coordinates, order
from attnlab.experiments.attention_stats import SATURATED, attention_stats
from attnlab.experiments.budget import Budget, TrainedVariant
from attnlab.experiments.positions import ngram_f1, scrambled, words
from attnlab.experiments.results import Results
from attnlab.model import Seq2SeqTransformer
from attnlab.translate.pytorch import Translator


def _study(tmp_path, tiny_corpus, study: str, variants: str) -> dict:
    out = tmp_path / study
    argv = ["-q", "experiment", study, "--config", str(tiny_corpus["config"]), "--steps", "20",
            "--variants", variants, "--runs", str(tmp_path / "runs"), "--out", str(out)]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert (out / "results.md").read_text(encoding="utf-8").startswith(f"# {study}: ")
    for picture in results["pictures"]:
        assert (out / picture).stat().st_size > 5_000
    return results


def test_positions_study_trains_each_variant_under_one_budget(tmp_path, tiny_corpus):
    results = _study(tmp_path, tiny_corpus, "positions", "add,none")
    assert [r["variant"] for r in results["rows"]] == ["add", "none"]
    assert all(r["steps"] == 20 and r["test_bleu"] >= 0 for r in results["rows"])
    assert set(results["curves"]) == {"add", "none"} and results["curves"]["none"][-1]["step"] == 20
    assert isinstance(results["scrambled"], list)
    assert "experiment positions" in results["command"] and "--steps 20" in results["command"]
    trained = (tmp_path / "runs" / "none" / "config.toml").read_text(encoding="utf-8")
    assert 'positions = "none"' in trained


def test_scaling_study_measures_every_head(tmp_path, tiny_corpus):
    results = _study(tmp_path, tiny_corpus, "scaling", "sqrt,none")
    heads = results["heads"]["none"]
    assert len(heads) == 3 * 4  # encoder, decoder and cross-attention: 1 layer each, 4 heads
    for row in results["rows"]:
        assert 0 <= row["saturated"] <= row["max_saturated"] <= 1
        assert 0 < row["entropy"] <= row["max_entropy"]
    sqrt = results["heads"]["sqrt"][0]
    assert sqrt["var_scaled"] == pytest.approx(sqrt["var_qk"] / 8, rel=1e-3)  # d_k = 32 / 4
    none = results["heads"]["none"][0]
    assert none["var_scaled"] == pytest.approx(none["var_qk"], rel=1e-3)


def test_a_bad_budget_or_variant_is_one_line(tmp_path, tiny_corpus, capsys):
    base = ["experiment", "scaling", "--config", str(tiny_corpus["config"]), "--out", str(tmp_path / "o")]
    assert main([*base, "--variants", "sqrt,cube"]) == 2
    assert main([*base, "--steps", "0"]) == 2
    assert main(["experiment", "coordinates", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["attnlab: error: --variants must name some of sqrt, none, dk, got 'sqrt,cube'",
                   "attnlab: error: --steps must be at least 1, got 0",
                   "attnlab: error: experiment coordinates reads a trained model: give --model runs/NAME"]
    with pytest.raises(Exception, match="give --steps or --minutes"):
        Budget(steps=3, minutes=1.0)
    with pytest.raises(Exception, match="the config sets no budget"):
        Budget().apply(Config())
    assert Budget(minutes=2.5).describe(Config()) == "2.5 minutes"


def test_attention_stats_agree_with_the_models_own_weights():
    """Entropy and saturation from the hooked queries and keys equal those of the weights encode returns."""
    torch.manual_seed(0)
    model = Seq2SeqTransformer(ModelConfig(vocab_size=30, d_model=16, n_heads=2, d_ff=32, n_encoder_layers=1,
                                           n_decoder_layers=1, dropout=0.0, attention_scale="none")).eval()
    src, tgt = [[5, 6, 7, 8], [9, 10]], [[11, 12], [13, 14, 15]]
    stats = attention_stats(model, src, tgt)
    enc = [s for s in stats if s.kind == "encoder"]
    entropies, saturated = [[], []], [[], []]
    for ids in src:
        w = model.encode(torch.tensor([ids]), need_weights=True).attention[0][0]  # (H,S,S)
        for h in range(2):
            entropies[h] += torch.special.entr(w[h]).sum(-1).tolist()
            saturated[h] += (w[h].amax(-1) > SATURATED).float().tolist()
    for h in range(2):
        assert enc[h].entropy == pytest.approx(np.mean(entropies[h]), rel=1e-4)
        assert enc[h].saturated == pytest.approx(np.mean(saturated[h]))
        assert enc[h].max_entropy == pytest.approx((4 * math.log(4) + 2 * math.log(2)) / 6)
    dots = [[], []]  # q·k of every pair, from the first layer's input and its in_proj written out
    for ids in src:
        x = model.positions(model.src_embed(torch.tensor(ids)) * 4.0)  # (S,D), √16 = 4
        q, k, _ = (x @ model.encoder[0].self_attn.in_proj.weight.T + model.encoder[0].self_attn.in_proj.bias).chunk(3, -1)
        for h in range(2):
            dots[h] += (q[:, 8 * h : 8 * h + 8] @ k[:, 8 * h : 8 * h + 8].T).flatten().tolist()
    for h in range(2):
        assert enc[h].var_qk == pytest.approx(np.var(dots[h]), rel=1e-4)


@pytest.mark.parametrize("hyp,ref,n,f1", [
    ("a b c d", "a b c d", 2, 1.0),
    ("d c b a", "a b c d", 1, 1.0),
    ("d c b a", "a b c d", 2, 0.0),
    ("a b x", "a b c d", 1, 2 * (2 / 3) * (2 / 4) / (2 / 3 + 2 / 4)),
])
def test_ngram_f1_by_hand(hyp, ref, n, f1):
    assert ngram_f1(hyp.split(), ref.split(), n) == pytest.approx(f1)


def test_scrambled_finds_right_words_in_the_wrong_order(tmp_path):
    def variant(name, hyps):
        return TrainedVariant(name, tmp_path, [], 1, 1.0, 0.0, 0.0, ["甲", "乙"], [["Tom likes big dogs."], ["Hi there."]], hyps)

    found = scrambled(variant("none", ["Dogs big likes Tom.", "Hi there."]),
                      variant("add", ["Tom likes big dogs.", "Hi there."]), "en")
    assert [e["source"] for e in found] == ["甲"] and found[0]["none_bigram_f1"] == 0.0
    assert words("Tom's DOG, big!", "en") == ["tom's", "dog", "big"] and words("你好，世界", "zh") == list("你好世界")


@pytest.mark.parametrize("kind", POSITIONS)
def test_only_the_encoder_without_positions_is_permutation_equivariant(kind):
    cfg = ModelConfig(vocab_size=50, d_model=32, n_heads=4, d_ff=64, n_encoder_layers=2, positions=kind)
    model = order.fresh_models(cfg)[kind]
    src, perm = order.random_case(50, length=7)
    gap = order.permutation_gap(model, src, perm)
    if kind == "none":
        assert gap < 1e-5
    else:
        assert gap > 1e-2


def test_order_study_on_a_trained_model(tiny_run):
    results = order.run("attnlab experiment order", ModelConfig(vocab_size=50, d_model=32, n_heads=4, d_ff=64),
                        model_dir=tiny_run)
    trained, bare = results.rows[-2:]
    assert trained["equivariant"] == "no" and bare["equivariant"] == "yes"
    assert [r["equivariant"] for r in results.rows[:-2]] == ["no"] * (len(POSITIONS) - 1) + ["yes"]


def test_context_follows_a_word_through_the_layers(tiny_run, tmp_path):
    translator = Translator.load(tiny_run)
    study = context.study_word(translator, "三", ["一二三四", "四三二一", "三"])
    assert study.stages == ["embedding", "+ position", "layer 1"]
    (cos_01, *_), static = study.pair_cosines()[(0, 1)], study.static_cosines()
    assert cos_01 == pytest.approx(1.0) and all(s[0] == pytest.approx(1.0) for s in static)
    for c in study.contexts:
        assert "三" in "".join(c.pieces[i] for i in c.span)
        assert c.attention.shape == (1, 4, len(c.pieces))
        torch.testing.assert_close(c.attention.sum(-1), torch.ones(1, 4))
    assert study.neighbours[0][0][0][0].replace("▁", "") == "三"  # the static vector's nearest piece is itself
    record = study.record()
    json.dumps(record)
    assert set(record["pair_cosines"]) == {"0-1", "0-2", "1-2"}
    with pytest.raises(Exception, match="is not in the sentence"):
        context.study_word(translator, "五", ["一二三四", "四三二一"])


def test_context_command(tiny_run, tmp_path, capsys):
    out = tmp_path / "ctx.png"
    assert main(["context", "--model", str(tiny_run), "一二三", "三二一", "--word", "二", "--out", str(out)]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["word"] == "二" and len(record["pair_cosines"]["0-1"]) == 3 and out.stat().st_size > 5_000
    assert main(["context", "--model", str(tiny_run), "一二三", "--word", "二"]) == 2
    assert "needs two sentences or more" in capsys.readouterr().err


def test_context_study_writes_its_table(tiny_run, tmp_path):
    results = context.run(tiny_run, tmp_path, "cmd", cases=(("san", "三", ("一二三", "三二一")),))
    results.write(tmp_path)
    assert (tmp_path / "context-san.png").is_file() and "| 三 | 一二三 | 三二一 |" in (tmp_path / "results.md").read_text()


def test_a_matrix_keeps_parallels_and_ratios_a_quadratic_map_does_not():
    a, b = np.array([[0.5, 0.5], [1.5, 0.5]]), np.array([[0.5, 1.5], [1.5, 1.5]])
    assert coordinates.kept(coordinates.linear, a, b) == {"parallel_angle_deg": 0.0, "midpoint_ratio": 0.5}
    bent = coordinates.kept(coordinates.quadratic, a, b)
    assert bent["parallel_angle_deg"] > 10 and abs(bent["midpoint_ratio"] - 0.5) > 0.05
    np.testing.assert_allclose(coordinates.linear(np.eye(2)), coordinates.M)  # rows: the images of e1, e2


def test_coordinates_on_a_trained_model(tiny_run, tmp_path):
    results = coordinates.run(tiny_run, tmp_path, "cmd", words=("一", "二"))
    numbers = results.detail["model_numbers"]
    assert numbers["one_hot_times_E_minus_row"] == 0.0
    for name in "QKV":
        assert numbers[name]["midpoint_error"] < 1e-5 and numbers[name]["off_plane_share"] < 1e-6
    assert numbers["FFN"]["midpoint_error"] > 1e-3
    assert (tmp_path / "coordinates-2d.png").is_file() and (tmp_path / "coordinates-model.png").is_file()


def test_results_table_markdown(tmp_path):
    r = Results("demo", "attnlab experiment demo", "a title", [("a", "A"), ("b", "B")],
                [{"a": "x|y", "b": 0.12345}, {"a": "z", "b": None}], notes=["a note"], pictures=["p.png"])
    text = r.write(tmp_path).joinpath("results.md").read_text()
    assert "| x\\|y | 0.123 |" in text and "| z | – |" in text and "![p.png](p.png)" in text
    assert json.loads((tmp_path / "results.json").read_text())["rows"][0]["b"] == 0.12345


def test_scaling_heads_of_a_trained_model(tiny_run, tmp_path, capsys):
    assert main(["-q", "experiment", "scaling", "--model", str(tiny_run), "--out", str(tmp_path)]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["head"] for r in rows[:2]] == ["encoder layer 1 head 1", "encoder layer 1 head 2"] and len(rows) == 12
    assert all(r["var_scaled"] == pytest.approx(r["var_qk"] / 8, rel=1e-3) for r in rows)
    assert (tmp_path / "scaling-heads.png").is_file()
