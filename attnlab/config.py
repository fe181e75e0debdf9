"""Typed configuration: model, tokenizer, data, training and decoding sizes, loaded from TOML.

Config is data: every field has a default and a comment. `load_config` reads a TOML file whose tables
match the dataclasses (`[model]`, `[tokenizer]`, `[data]`, `[train]`, `[decode]`); an unknown table
or key is an error that names it. `apply_overrides` applies `--set section.key=value` strings.
The dataclasses are frozen: a changed value makes a new config (`dataclasses.replace`), so a config
handed to one part of the program never changes under another.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from attnlab.errors import AttnlabError
from attnlab.schedule import SCHEDULES

DIRECTIONS = ("zh-en", "en-zh")
POSITIONS = ("add", "multiply", "multiply1p", "rotate", "learned", "none")  # model.positions (nn/positional.py)
ATTENTION_SCALES = ("sqrt", "none", "dk")  # model.attention_scale's names (or a number: the divisor itself)
CONFIG_VERSION = 1
SAMPLING = ("", "topk", "topp")  # decode.sample: off, top-k or nucleus (top-p) sampling


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 8000  # joint subword vocabulary (set from the trained tokenizer)
    d_model: int = 256  # width of every residual stream vector
    n_heads: int = 4  # attention heads; must divide d_model
    d_ff: int = 1024  # inner width of the position-wise feed-forward network
    n_encoder_layers: int = 3  # encoder stack depth
    n_decoder_layers: int = 3  # decoder stack depth
    dropout: float = 0.1  # residual dropout on each sublayer output and on embeddings (paper: 0.1)
    attention_dropout: float = 0.0  # dropout on attention weights (nn.Transformer applies `dropout` here)
    activation_dropout: float = 0.0  # dropout after the FFN's ReLU (nn.Transformer applies `dropout` here)
    norm_first: bool = False  # False: post-norm as in the paper; True: pre-norm (+ final LayerNorm per stack)
    tie_embeddings: bool = True  # share source, target and output embeddings (needs a joint vocabulary)
    fused_attention: bool = True  # use F.scaled_dot_product_attention when weights are not requested
    max_positions: int = 1024  # positional-encoding rows precomputed (longer inputs extend the table)
    positions: str = "add"  # how position enters the embedding: "add" x + PE (paper), "multiply" x ⊙ PE,
    # "multiply1p" x ⊙ (1 + PE), "rotate" PE's angles turn x's pairs, "learned" x + a trained table, "none"
    attention_scale: str = "sqrt"  # what q·k is divided by before the softmax: "sqrt" √d_k (paper), "none" 1,
    # "dk" d_k (a larger temperature), or a positive number


@dataclass(frozen=True)
class TokenizerConfig:
    vocab_size: int = 8000  # subword vocabulary size, including the 4 special tokens
    model_type: str = "unigram"  # sentencepiece model: "unigram" or "bpe"
    character_coverage: float = 0.9995  # share of characters covered (the rest become <unk>); CJK needs < 1
    joint: bool = True  # one vocabulary for zh and en (required for tied embeddings)


@dataclass(frozen=True)
class DataConfig:
    train: str = "data/tatoeba-zh-en/train.tsv"  # training pairs: Tatoeba 4-column TSV or `src TAB tgt`
    dev: str = "data/tatoeba-zh-en/dev.tsv"  # development pairs for dev loss / BLEU
    test: str = "data/tatoeba-zh-en/test.tsv"  # held-out pairs for `attnlab evaluate`
    max_tokens_per_sentence: int = 128  # training pairs longer than this (in subwords) are skipped
    dictionary: str = ""  # a `zh TAB en` word list (e.g. data/cedict/train.tsv) whose pairs join the training
    # pairs, oriented by direction; the tokenizer is still trained on the sentences alone ("" = none)
    dictionary_scope: str = "corpus"  # "corpus": only headwords that occur in the training sentences'
    # Chinese; "all": every pair of the list
    extra: str = ""  # more training pairs, e.g. back-translations: a TSV or "SRC_FILE,TGT_FILE", read as `train`
    # is (a 2-column or aligned pair taken as source, target); the tokenizer is still trained on `train` alone


@dataclass(frozen=True)
class TrainConfig:
    max_tokens: int = 4096  # tokens (source + target, padding included) per batch
    accumulate: int = 1  # batches per optimizer step (gradient accumulation)
    schedule: str = "inverse_sqrt"  # "inverse_sqrt" (the paper's), or "cosine" / "linear": warm up, then
    # decay to lr_final_ratio * lr_peak exactly where the run's budget ends (attnlab/schedule.py)
    lr_scale: float = 1.0  # inverse_sqrt: factor on d_model^-0.5 * min(step^-0.5, step * warmup^-1.5)
    warmup_steps: int = 4000  # inverse_sqrt: linear warmup length in steps
    cooldown_fraction: float = 0.0  # inverse_sqrt: ramp the rate linearly to 0 over this last share of the
    # budget (max_steps, max_epochs or max_minutes; 0: no cool-down, the paper's schedule)
    lr_peak: float = 1e-3  # cosine / linear: the learning rate at the end of the warm-up
    warmup_fraction: float = 0.1  # cosine / linear: share of the budget spent warming up
    lr_final_ratio: float = 0.0  # cosine / linear: learning rate at the end of the budget, as a share of lr_peak
    weight_decay: float = 0.0  # decoupled weight decay (AdamW) on matrices; 0 keeps plain Adam
    label_smoothing: float = 0.1  # epsilon of label-smoothed cross-entropy (padding excluded)
    subword_alpha: float = 0.0  # subword regularisation (Kudo 2018): each epoch draws the training pairs'
    # segmentations from their 16 best with probability ∝ P^alpha (unigram tokenizers); 0 = off
    clip_norm: float = 1.0  # gradient-norm clipping threshold (0 disables)
    max_bad_steps: int = 5  # consecutive steps with a NaN/inf loss or gradient (each skipped, weights
    # untouched) after which the run stops with an error; fp32 and bf16 need no loss scaling, so none is used
    max_steps: int = 0  # stop after this many optimizer steps (0: no limit)
    max_epochs: int = 0  # stop after this many passes over the data (0: no limit)
    max_minutes: float = 0.0  # wall-clock budget in minutes (0: no limit)
    eval_every: int = 500  # optimizer steps between dev evaluations and checkpoints
    log_every: int = 50  # optimizer steps between metrics-log lines
    dev_bleu_sentences: int = 500  # dev sentences decoded (greedy) for dev BLEU at each evaluation
    seed: int = 1  # seed for weights, batch order and dropout
    threads: int = 0  # torch intra-op threads (0: leave torch's default)
    device: str = "auto"  # "auto" (CUDA if present, else CPU), "cpu" or "cuda"
    precision: str = "fp32"  # "fp32", or "bf16" autocast (meant for GPUs; weights and optimizer stay fp32)
    compile: bool = False  # wrap the training forward in torch.compile
    average_last: int = 0  # at the end, average the last N checkpoints and keep the average if its dev
    # BLEU beats the best single checkpoint's (0: off); also `attnlab average`
    init_embeddings: str = ""  # comma-separated Word2Vec vector folders that start the embeddings ("" = random)


@dataclass(frozen=True)
class DecodeConfig:
    beam: int = 4  # beam size (1: greedy)
    length_penalty: float = 0.6  # GNMT alpha: score / ((5 + len) / 6) ** alpha
    max_len_a: float = 1.5  # output length limit a * source_length + b (in subwords)
    max_len_b: int = 10
    max_input_tokens: int = 256  # longer inputs are truncated (with one warning)
    n_best: int = 1  # hypotheses returned per input (at most beam; with sampling: independent draws)
    sample: str = ""  # "" searches (greedy / beam); "topk" or "topp" samples each token instead
    top_k: int = 10  # sample = "topk": draw from the k most likely tokens
    top_p: float = 0.9  # sample = "topp": draw from the fewest most likely tokens holding this much probability
    temperature: float = 1.0  # sampling: logits divided by this (< 1 sharper, > 1 flatter)
    seed: int = 0  # sampling: seed of the random draws (the same seed and input give the same outputs)
    # length control, named as CTranslate2 names them (0 / 1.0: off)
    max_decoding_length: int = 0  # output limit in subwords; 0: max_len_a * source_length + max_len_b
    min_decoding_length: int = 0  # <eos> is not allowed before this many subwords
    no_repeat_ngram_size: int = 0  # no n-gram of this size appears twice in an output
    repetition_penalty: float = 1.0  # > 1 makes tokens already in the output less likely (Keskar et al. 2019)

    def __post_init__(self) -> None:  # here, so that DecodeOptions (a subclass) is checked by the same line
        checks = (  # (field, holds, what it must be)
            ("beam", self.beam >= 1, "must be at least 1"),
            ("n_best", self.n_best >= 1 and (bool(self.sample) or self.n_best <= self.beam),
             "must be at least 1" if self.sample else f"must be between 1 and decode.beam ({self.beam})"),
            ("sample", self.sample in SAMPLING, "must be topk or topp (or empty: no sampling)"),
            ("top_k", self.top_k >= 1, "must be at least 1"),
            ("top_p", 0.0 < self.top_p <= 1.0, "must be in (0, 1]"),
            ("temperature", self.temperature > 0, "must be above 0"),
            ("max_decoding_length", self.max_decoding_length >= 0, "must be 0 or more"),
            ("min_decoding_length", self.min_decoding_length >= 0, "must be 0 or more"),
            ("no_repeat_ngram_size", self.no_repeat_ngram_size >= 0, "must be 0 or more"),
            ("repetition_penalty", self.repetition_penalty > 0, "must be above 0"),
        )
        for name, holds, what in checks:
            if not holds:
                raise AttnlabError(f"{what}, got {getattr(self, name)!r}", field=f"decode.{name}")


@dataclass(frozen=True)
class Config:
    direction: str = "zh-en"  # "zh-en" or "en-zh"; with bidirectional, the direction translated by default
    bidirectional: bool = False  # one model for both directions: each training pair also reversed, the decoder
    # started by a target-language tag (<2en>/<2zh>) instead of <bos>; translate/evaluate/serve take --direction
    model: ModelConfig = field(default_factory=ModelConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    version: int = CONFIG_VERSION  # config format version (checked on load)

    @property
    def src_lang(self) -> str:
        return self.direction.split("-")[0]

    @property
    def tgt_lang(self) -> str:
        return self.direction.split("-")[1]

    def validate(self) -> None:
        split_direction(self.direction)
        m, t = self.model, self.train
        if m.d_model % m.n_heads:
            raise AttnlabError(f"({m.n_heads}) must divide model.d_model ({m.d_model})", field="model.n_heads")
        if m.positions not in POSITIONS:
            raise AttnlabError(f"must be one of {', '.join(POSITIONS)}, got {m.positions!r}", field="model.positions")
        attention_divisor(m.attention_scale, m.d_model // m.n_heads)
        if m.tie_embeddings and not self.tokenizer.joint:
            raise AttnlabError("needs tokenizer.joint = true", field="model.tie_embeddings")
        if self.bidirectional and not self.tokenizer.joint:
            raise AttnlabError("needs tokenizer.joint = true (the decoder writes both languages)", field="bidirectional")
        if t.precision not in ("fp32", "bf16"):
            raise AttnlabError(f"must be fp32 or bf16, got {t.precision!r}", field="train.precision")
        if t.schedule not in SCHEDULES:
            raise AttnlabError(f"must be one of {', '.join(SCHEDULES)}, got {t.schedule!r}", field="train.schedule")
        if t.schedule != "inverse_sqrt" and not (t.max_steps or t.max_epochs or t.max_minutes):
            raise AttnlabError(f"= {t.schedule!r} decays over the run's budget: "
                               "set train.max_steps, train.max_epochs or train.max_minutes", field="train.schedule")
        if t.subword_alpha > 0 and self.tokenizer.model_type != "unigram":
            raise AttnlabError("samples unigram segmentations; it needs tokenizer.model_type = \"unigram\"",
                               field="train.subword_alpha")
        if not 0.0 <= t.cooldown_fraction <= 1.0:
            raise AttnlabError(f"must be in [0, 1], got {t.cooldown_fraction}", field="train.cooldown_fraction")
        if t.cooldown_fraction and (t.schedule != "inverse_sqrt" or not (t.max_steps or t.max_epochs or t.max_minutes)):
            raise AttnlabError("cools the inverse_sqrt schedule down over the end of the run's budget: it needs "
                               "train.schedule = \"inverse_sqrt\" and train.max_steps, max_epochs or max_minutes",
                               field="train.cooldown_fraction")
        if not 0.0 <= t.warmup_fraction < 1.0:
            raise AttnlabError(f"must be in [0, 1), got {t.warmup_fraction}", field="train.warmup_fraction")
        if self.data.extra and self.bidirectional:
            raise AttnlabError("cannot join a model of both directions: its pairs would also be read reversed, "
                               "training the other direction on their machine-made side", field="data.extra")
        if self.data.dictionary_scope not in ("corpus", "all"):
            raise AttnlabError(f"must be corpus or all, got {self.data.dictionary_scope!r}", field="data.dictionary_scope")
        if t.max_bad_steps < 1:
            raise AttnlabError(f"must be at least 1, got {t.max_bad_steps}", field="train.max_bad_steps")
        if self.version != CONFIG_VERSION:
            raise AttnlabError(f"config version {self.version} is not supported (this attnlab reads {CONFIG_VERSION})")


def attention_divisor(scale: str, d_head: int) -> float:
    """What a head's q·k is divided by for `model.attention_scale` (√d_k, 1, d_k, or the number given)."""
    named = {"sqrt": math.sqrt(d_head), "none": 1.0, "dk": float(d_head)}
    if scale in named:
        return named[scale]
    try:
        divisor = float(scale)
    except ValueError:
        divisor = -1.0
    if not (divisor > 0 and math.isfinite(divisor)):
        raise AttnlabError(f"must be one of {', '.join(ATTENTION_SCALES)} or a positive number, got {scale!r}",
                           field="model.attention_scale")
    return divisor


def split_direction(direction: str) -> tuple[str, str]:
    """(source, target) language of a direction; one outside DIRECTIONS is an error."""
    if direction not in DIRECTIONS:
        raise AttnlabError(f"must be one of {', '.join(DIRECTIONS)}, got {direction!r}", field="direction")
    src_lang, tgt_lang = direction.split("-")
    return src_lang, tgt_lang


def _build(cls: type, values: dict[str, Any], prefix: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise AttnlabError(f"unknown config key '{prefix}{key}' (known: {', '.join(known)})")
        default = getattr(cls(), key)
        if dataclasses.is_dataclass(default):
            if not isinstance(value, dict):
                raise AttnlabError(f"config [{key}] must be a table")
            kwargs[key] = _build(type(default), value, f"{key}.")
        else:
            kwargs[key] = _coerce(value, default, f"{prefix}{key}")
    return cls(**kwargs)


def _coerce(value: Any, default: Any, name: str) -> Any:
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        raise AttnlabError(f"must be true or false, got {value!r}", field=name)
    try:
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if isinstance(default, float):
            return float(value)
    except (TypeError, ValueError):
        kind = "an integer" if isinstance(default, int) else "a number"
        raise AttnlabError(f"must be {kind}, got {value!r}", field=name) from None
    return str(value)


def config_from_dict(values: dict[str, Any]) -> Config:
    cfg = _build(Config, values, "")
    cfg.validate()
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    path = Path(path)
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AttnlabError(f"config file not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise AttnlabError(f"config file {path} is not valid TOML: {e}") from None
    apply_overrides(values, overrides or [])
    try:
        return config_from_dict(values)
    except AttnlabError as e:
        raise AttnlabError(f"{path}: {e}") from None  # a value from a file: named as the file spells it


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> None:
    """Apply `section.key=value` (or `key=value` for top-level keys) to a raw TOML dict in place."""
    for item in overrides:
        if "=" not in item:
            raise AttnlabError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        if len(parts) > 2 or not all(parts):
            raise AttnlabError(f"--set key must be section.key or key, got {key!r}")
        target = values.setdefault(parts[0], {}) if len(parts) == 2 else values
        if not isinstance(target, dict):
            raise AttnlabError(f"--set {key}: {parts[0]!r} is not a section")
        target[parts[-1]] = value.strip()


def config_to_toml(cfg: Config) -> str:
    return tomli_w.dumps(dataclasses.asdict(cfg))
