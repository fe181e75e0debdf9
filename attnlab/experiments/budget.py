"""Training the variants of one config under one budget, for the studies that compare trained models
(positions, scaling). Each variant is the config with some `model.*` values changed, trained by
`attnlab.train` (the same trainer, schedule, data and seed as `attnlab train`) into its own run folder,
then scored on the test split with the config's decoding; its dev curve is read back from metrics.jsonl.

A variant whose folder already holds a run is resumed (`train(..., resume=True)`): a study that was
stopped continues where it was, and one that finished is only scored again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnlab import checkpoint
from attnlab.config import Config
from attnlab.data.parallel import load_pairs
from attnlab.errors import AttnlabError
from attnlab.metrics import score
from attnlab.train import train
from attnlab.translate.pytorch import Translator

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Budget:
    """How long each variant trains: optimizer steps or wall-clock minutes (neither: the config's own)."""

    steps: int = 0  # train.max_steps for every variant (0: not set here)
    minutes: float = 0.0  # train.max_minutes for every variant (0: not set here)

    def __post_init__(self) -> None:
        if self.steps < 0 or self.minutes < 0 or (self.steps and self.minutes):
            raise AttnlabError(f"give --steps or --minutes, once and not below 0 (got steps={self.steps}, "
                               f"minutes={self.minutes})")

    def apply(self, cfg: Config) -> Config:
        """cfg with this budget; with none given, the config's own, which must then have one."""
        if not (self.steps or self.minutes):
            t = cfg.train
            if not (t.max_steps or t.max_minutes or t.max_epochs):
                raise AttnlabError("the config sets no budget (train.max_steps, max_minutes or max_epochs): "
                                   "give --steps or --minutes, so that every variant trains as long")
            return cfg
        return dataclasses.replace(cfg, train=dataclasses.replace(
            cfg.train, max_steps=self.steps, max_minutes=self.minutes, max_epochs=0))

    def describe(self, cfg: Config) -> str:
        """The budget each variant of cfg gets, in words ("2600 steps")."""
        t = self.apply(cfg).train
        if t.max_steps:
            return f"{t.max_steps} steps"
        if t.max_minutes:
            return f"{t.max_minutes:g} minutes"
        return f"{t.max_epochs} epochs"


@dataclass
class TrainedVariant:
    """One trained variant: its run folder, dev curve, final scores and test translations."""

    name: str
    run_dir: Path
    curve: list[dict[str, Any]]  # per evaluation: step, dev_loss, dev_bleu
    steps: int  # optimizer steps taken
    seconds: float  # training seconds
    test_bleu: float
    test_chrf: float
    sources: list[str] = field(default_factory=list)  # test sources, in order
    references: list[list[str]] = field(default_factory=list)  # their references
    hypotheses: list[str] = field(default_factory=list)  # this variant's translations

    def row(self) -> dict[str, Any]:
        last = self.curve[-1] if self.curve else {}
        return {"variant": self.name, "steps": self.steps, "minutes": round(self.seconds / 60, 1),
                "dev_loss": last.get("dev_loss"), "dev_bleu": last.get("dev_bleu"),
                "best_dev_bleu": max((c["dev_bleu"] for c in self.curve if c.get("dev_bleu") is not None), default=None),
                "test_bleu": round(self.test_bleu, 2), "test_chrf": round(self.test_chrf, 2)}


def dev_curve(run_dir: Path) -> list[dict[str, Any]]:
    """The evaluations in a run's metrics.jsonl (not the averaged ones), in step order."""
    curve = []
    for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if "dev_loss" in record:
            curve.append({k: record.get(k) for k in ("step", "dev_loss", "dev_bleu")})
    return curve


def translate_test_split(run_dir: Path, limit: int = 0) -> tuple[list[str], list[list[str]], list[str], Any]:
    """Sources, references and the run's best model's translations of the test split (the config's beam)."""
    t = Translator.load(run_dir)
    groups = load_pairs(t.cfg.data.test, t.cfg.direction).references()
    groups = groups[:limit] if limit > 0 else groups
    sources, refs = [s for s, _ in groups], [r for _, r in groups]
    hyps = t.translate(sources)
    return sources, refs, hyps, score(hyps, refs, t.cfg.tgt_lang)


def train_variant(cfg: Config, name: str, changes: dict[str, Any], runs_dir: Path, budget: Budget,
                  test_limit: int = 0) -> TrainedVariant:
    """Train cfg with model.* `changes` into runs_dir/name (resuming a run found there), then test it."""
    cfg = budget.apply(dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **changes)))
    cfg.validate()
    run_dir = runs_dir / name
    resume = (run_dir / checkpoint.CONFIG_FILE).is_file()
    log.info("variant %s: training into %s%s", name, run_dir, " (resuming)" if resume else "")
    result = train(cfg, run_dir, resume=resume)
    sources, refs, hyps, scores = translate_test_split(run_dir, test_limit)
    log.info("variant %s: test BLEU %.2f", name, scores.bleu)
    return TrainedVariant(name, run_dir, dev_curve(run_dir), int(result["step"]), _seconds(run_dir),
                          scores.bleu, scores.chrf, sources, refs, hyps)


def _seconds(run_dir: Path) -> float:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    return max((r.get("elapsed_s", 0.0) for r in records), default=0.0)
