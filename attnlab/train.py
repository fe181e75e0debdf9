"""The trainer: label-smoothed cross-entropy, Adam with the paper's schedule (or a budget-fitted one),
token batches, gradient accumulation and clipping, dev evaluation, checkpoints, exact resume and a
wall-clock budget. `attnlab.prepare` builds what it trains (tokenizer, batches, model); `train()` wires
the two together.

Vaswani et al. (2017) section 5: Adam(β1=0.9, β2=0.98, ε=1e-9),
    lrate = d_model^-0.5 · min(step^-0.5, step · warmup_steps^-1.5),
label smoothing ε_ls = 0.1 (`nn/loss.py`); the schedules are in `schedule.py`. Like minGPT's, the
`Trainer` takes a model, a loss, batches and an evaluator, and calls only the model's public
encode / decode / logits (through the loss).

Under torchrun every rank runs this same loop on its own share of each step's batches (the step's
`accumulate × world` batches dealt out round-robin), gradients are summed by DistributedDataParallel,
and the loss is normalised by the step's target tokens over all ranks, so N processes with
`accumulate = a` take the same steps as one process with `accumulate = N·a`. Rank 0 alone evaluates,
logs and writes checkpoints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from attnlab import checkpoint, distributed
from attnlab.config import Config
from attnlab.data.batching import Batch, collate, epoch_order
from attnlab.data.parallel import ParallelData
from attnlab.distributed import Distributed
from attnlab.errors import AttnlabError
from attnlab.fileio import atomic_write_text
from attnlab.hardware import budget_note, keep_freed_memory, matmul_peak
from attnlab.metrics import score
from attnlab.model import Seq2SeqTransformer
from attnlab.nn.loss import label_smoothed_fused
from attnlab.prepare import EncodedData, TrainingBatches, prepare_run
from attnlab.schedule import budget_lr, cooldown_factor, inverse_sqrt_lr, run_progress
from attnlab.tokenizer import PAD, Tokenizer
from attnlab.translate.pytorch import Translator

log = logging.getLogger(__name__)


# -- the loss ---------------------------------------------------------------------------------------

class LossComputer(nn.Module):
    """What DistributedDataParallel wraps (it hooks `forward`): a batch -> (smoothed loss sum, NLL sum)."""

    def __init__(self, model: Seq2SeqTransformer, epsilon: float) -> None:
        super().__init__()
        self.model, self.epsilon = model, epsilon

    def forward(self, src: Tensor, tgt_in: Tensor, tgt_out: Tensor) -> tuple[Tensor, Tensor]:
        hidden = self.model.decode(tgt_in, memory=self.model.encode(src)).hidden  # (B,T,D)
        keep = tgt_out != PAD  # (B,T)
        logits = self.model.logits(hidden[keep]).float()  # (N,V); fp32 even under bf16 autocast
        return label_smoothed_fused(logits, tgt_out[keep], self.epsilon)


def batch_loss(model: Seq2SeqTransformer, batch: Batch, epsilon: float) -> tuple[Tensor, Tensor]:
    """Summed smoothed loss and NLL over the batch's non-pad target positions (pads never reach the output layer)."""
    return LossComputer(model, epsilon)(batch.src, batch.tgt_in, batch.tgt_out)


def make_optimizer(model: nn.Module, weight_decay: float) -> torch.optim.Optimizer:
    """Adam(β1=0.9, β2=0.98, ε=1e-9) as in the paper; with weight decay, AdamW decaying only the
    matrices (embeddings included), never biases or LayerNorm gains. The update is torch's fused kernel
    (one pass over all parameters; on a CPU a third of the per-parameter loop's time), the same arithmetic."""
    params = list(model.parameters())
    fused = all(p.device.type in ("cpu", "cuda") and p.dtype == torch.float32 for p in params)
    kw: dict[str, Any] = {"lr": 0.0, "betas": (0.9, 0.98), "eps": 1e-9, "fused": fused}
    if weight_decay <= 0:
        return torch.optim.Adam(params, **kw)
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, **kw)


def learning_rate(cfg: Config, step: int, seconds: float, epoch_steps: int) -> float:
    """The learning rate of optimizer step `step`, taken after `seconds` of training; `epoch_steps` is
    train.max_epochs in steps (the budget schedules' third limit)."""
    t = cfg.train
    lr = inverse_sqrt_lr(step, cfg.model.d_model, t.warmup_steps, t.lr_scale)
    if t.schedule == "inverse_sqrt" and not t.cooldown_fraction:
        return lr  # the paper's: no limit of the run needed
    progress = run_progress(step - 1, seconds, t.max_steps, t.max_minutes, epoch_steps)
    if t.schedule == "inverse_sqrt":
        return lr * cooldown_factor(progress, t.cooldown_fraction)
    return budget_lr(progress, t.lr_peak, t.warmup_fraction, t.schedule, t.lr_final_ratio)


# -- evaluation -------------------------------------------------------------------------------------

@dataclass
class DevScores:
    loss: float  # NLL per target token (teacher forcing, no dropout)
    ppl: float  # exp(loss)
    bleu: float | None  # greedy BLEU on the first train.dev_bleu_sentences sources (None: off)

    def record(self) -> dict[str, Any]:
        return {"dev_loss": round(self.loss, 4), "dev_ppl": round(self.ppl, 2), "dev_bleu": self.bleu}


class Evaluator:
    """Scores a model on the dev pairs: loss and perplexity by teacher forcing, BLEU by greedy decoding."""

    def __init__(self, cfg: Config, tokenizer: Tokenizer, dev_data: ParallelData, dev: EncodedData,
                 device: torch.device) -> None:
        self.cfg, self.tokenizer, self.dev_data, self.dev, self.device = cfg, tokenizer, dev_data, dev, device

    def __call__(self, model: Seq2SeqTransformer) -> DevScores:
        model.eval()
        try:
            loss = self.dev_loss(model)
            return DevScores(loss, math.exp(min(loss, 50)), self.dev_bleu(model))
        finally:
            model.train()

    @torch.no_grad()
    def dev_loss(self, model: Seq2SeqTransformer) -> float:
        nll_sum, n = 0.0, 0
        for idx in self.dev.batches:
            batch = collate(*self.dev.batch(idx)).to(self.device)
            _, nll = batch_loss(model, batch, 0.0)
            nll_sum, n = nll_sum + nll.item(), n + batch.n_tgt_tokens
        return nll_sum / n

    def dev_bleu(self, model: Seq2SeqTransformer) -> float | None:
        k = self.cfg.train.dev_bleu_sentences
        if k <= 0:
            return None
        refs = self.dev_data.references()[:k]
        hyps = Translator(self.cfg, self.tokenizer, model).translate([src for src, _ in refs], beam=1)
        return score(hyps, [r for _, r in refs], self.cfg.tgt_lang).bleu


# -- run state and the log --------------------------------------------------------------------------

@dataclass
class TrainState:
    """The counters a checkpoint keeps (state.json's keys are these field names)."""

    step: int = 0  # optimizer steps taken, skipped non-finite ones included
    epoch: int = 0  # passes over the training batches completed
    position: int = 0  # batches of the current epoch already taken
    best_bleu: float = -1.0  # dev BLEU of the best weights so far (-1: none yet, or dev BLEU off)
    best_dev_loss: float = math.inf  # their dev loss (breaks BLEU ties)
    train_seconds: float = 0.0  # training time up to the last evaluation (or the end)
    bad_steps: int = 0  # non-finite steps in a row
    skipped_steps: int = 0  # non-finite steps in all

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainState:
        """From a state.json; other keys (optimizer, checksums) are ignored, missing ones keep their defaults."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def take_batch(self, epoch_batches: int) -> None:
        """One batch of an epoch of `epoch_batches` is used: move on, into the next epoch after the last."""
        self.position += 1
        if self.position == epoch_batches:
            self.epoch, self.position = self.epoch + 1, 0

    def improves(self, scores: DevScores) -> bool:
        """Whether these scores beat the best so far (by dev BLEU, ties such as 0.0 early on broken by dev
        loss; by dev loss alone when BLEU is off); if so they become the best."""
        bleu = scores.bleu if scores.bleu is not None else -1.0
        if not (bleu, -scores.loss) > (self.best_bleu, -self.best_dev_loss):
            return False
        self.best_bleu, self.best_dev_loss = bleu, scores.loss
        return True


@dataclass
class StepResult:
    loss: float  # smoothed loss per target token, over all ranks
    nll: float  # NLL per target token
    tokens: int  # target tokens of the step, over all ranks
    lr: float  # the learning rate the step was taken (or skipped) with
    finite: bool  # False: NaN/inf loss or gradient, the update was skipped


class MetricsLog:
    """metrics.jsonl, one JSON record a line (train loss every `log_every` steps, dev scores at each
    evaluation), and the window of steps the next train record averages. Only rank 0 writes."""

    def __init__(self, path: Path, write: bool = True) -> None:
        self.path, self.write = path, write
        self.start_window()

    def start_window(self) -> None:
        """An empty window, its clock (tokens/s) starting now."""
        self.loss = self.nll = 0.0  # token-weighted sums over the window's good steps
        self.tokens = self.steps = 0
        self.t0 = time.monotonic()

    def append(self, record: dict[str, Any]) -> None:
        if not self.write:
            return
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as e:  # a full disk names no file of its own
            raise AttnlabError(f"cannot write {self.path}: {e.strerror or e}") from None

    def truncate(self, step: int) -> dict[str, Any]:
        """Drop the lines written after the checkpoint of `step` that a run resumes from, so that the log
        reads as one run; return that checkpoint's own evaluation ({} if none: a run killed after its
        last save then has nothing left to do)."""
        if not self.path.is_file():
            return {}
        kept, evaluation = [], {}
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("step", 0) <= step:
                kept.append(line)
                if record.get("step") == step and "dev_loss" in record:
                    evaluation = record
        atomic_write_text(self.path, "".join(ln + "\n" for ln in kept))
        return evaluation

    def add(self, out: StepResult) -> None:
        """A good step joins the window."""
        self.loss += out.loss * out.tokens
        self.nll += out.nll * out.tokens
        self.tokens += out.tokens
        self.steps += 1

    def flush(self, state: TrainState, lr: float, elapsed_total: float) -> dict[str, Any]:
        """Log the window's mean loss, perplexity and speed at the state's step; start a new window."""
        loss, nll = self.loss / self.tokens, self.nll / self.tokens
        record = {"step": state.step, "epoch": state.epoch, "loss": round(loss, 4),
                  "ppl": round(math.exp(min(nll, 50)), 2), "lr": lr,
                  "tok_s": round(self.tokens / max(time.monotonic() - self.t0, 1e-9), 1),
                  "elapsed_s": round(elapsed_total, 1)}
        self.append(record)
        self.start_window()
        return record


# -- the trainer ------------------------------------------------------------------------------------

class Trainer:
    """Trains a model into a run directory: batches -> loss -> Adam steps, evaluations, checkpoints.
    Knows nothing of the model's insides: the loss calls encode/decode/logits."""

    def __init__(self, cfg: Config, run_dir: Path, model: Seq2SeqTransformer, loss: nn.Module,
                 batches: TrainingBatches, evaluator: Evaluator, dist: Distributed) -> None:
        self.cfg, self.run_dir, self.model, self.batches, self.evaluator, self.dist = (
            cfg, run_dir, model, batches, evaluator, dist)
        t = cfg.train
        self.optimizer = make_optimizer(model, t.weight_decay)
        self.loss_fn = loss
        if dist.active:
            torch.manual_seed(t.seed + 7919 * dist.rank)  # same initial weights, different dropout
            ids = [dist.device.index] if dist.device.type == "cuda" else None
            self.loss_fn = DistributedDataParallel(self.loss_fn, device_ids=ids)
        if t.compile:
            self.loss_fn = torch.compile(self.loss_fn)
        self.state = TrainState()
        self.metrics = MetricsLog(run_dir / "metrics.jsonl", write=dist.main)
        self.machine_gflops: float | None = None  # this machine's GEMM peak, when a time budget was measured
        self.stop_signal: str | None = None
        self._clock = time.monotonic()  # when the current stretch of training began (see _seconds)
        self.resumed_eval: dict[str, Any] = {}  # the logged evaluation of the checkpoint resumed from

    def resume(self, ckpt: Path | None) -> None:
        """Continue from a checkpoint's weights, Adam state, RNG and counters (None: from step 0)."""
        if ckpt is None:
            log.warning("--resume: no intact checkpoint in %s; starting from step 0",
                        self.run_dir / checkpoint.CHECKPOINT_DIR)
            if self.dist.main:
                self.resumed_eval = self.metrics.truncate(0)
            return
        self.state = TrainState.from_dict(checkpoint.load_checkpoint(ckpt, self.model, self.optimizer))
        if self.dist.active:  # the checkpoint holds rank 0's RNG; give the others their own again
            torch.manual_seed(self.cfg.train.seed + 7919 * self.dist.rank + self.state.step)
        log.info("resumed from %s (step %d, epoch %d)", ckpt, self.state.step, self.state.epoch)
        if self.dist.main:
            self.resumed_eval = self.metrics.truncate(self.state.step)

    def _lr(self, step: int, seconds: float) -> float:
        t = self.cfg.train
        epoch_steps = t.max_epochs * math.ceil(len(self.batches.current.batches) / (t.accumulate * self.dist.world))
        return learning_rate(self.cfg, step, seconds, epoch_steps)

    def _seconds(self) -> float:
        """Training seconds so far, this process's clock included (the budget schedules' time)."""
        return self.state.train_seconds + time.monotonic() - self._clock

    # -- evaluation and checkpoints ---------------------------------------------------------------
    def _keep_if_best(self, scores: DevScores, record: dict[str, Any]) -> bool:
        better = self.state.improves(scores)
        if better:
            checkpoint.save_best(self.run_dir, self.model, dict(record, direction=self.cfg.direction))
        return better

    def evaluate_and_save(self) -> dict[str, Any]:
        scores = self.evaluator(self.model)
        record = {"step": self.state.step, "epoch": self.state.epoch, **scores.record()}
        record["best"] = self._keep_if_best(scores, record)
        self.metrics.append(record)
        checkpoint.save_checkpoint(self.run_dir, self.model, self.optimizer, dataclasses.asdict(self.state),
                                   keep=max(2, self.cfg.train.average_last))
        return record

    def average_and_compare(self) -> dict[str, Any] | None:
        """Average the last `train.average_last` checkpoints; the average becomes the run's model when
        its dev BLEU (ties: dev loss) beats the best single checkpoint's. None when fewer than two exist."""
        ckpts = checkpoint.intact_checkpoints(self.run_dir)[-self.cfg.train.average_last:]
        if len(ckpts) < 2:
            log.info("train.average_last: only %d checkpoint(s); nothing to average", len(ckpts))
            return None
        checkpoint.apply_weights(self.model, checkpoint.average_weights(ckpts), ckpts[-1])
        scores = self.evaluator(self.model)
        steps = [checkpoint.checkpoint_step(c) for c in ckpts]
        record = {"step": self.state.step, "averaged_steps": steps, **scores.record()}
        record["best"] = self._keep_if_best(scores, record)
        # logged under its own keys, so that curves and --resume read only the checkpoints' evaluations
        self.metrics.append({"step": record["step"], "averaged_steps": steps, "averaged_dev_loss": record["dev_loss"],
                             "averaged_dev_bleu": scores.bleu, "best": record["best"]})
        return record

    # -- the loop -----------------------------------------------------------------------------------
    def _handle_signal(self, signum: int, _frame: Any) -> None:
        self.stop_signal = signal.Signals(signum).name

    def _done(self) -> str | None:
        """Why to stop now (the same answer on every rank), or None."""
        reason = self._stop_reason()
        if self.dist.active and self.dist.any(reason is not None) and reason is None:
            reason = "another rank stopped"
        return reason

    def _stop_reason(self) -> str | None:
        t, s = self.cfg.train, self.state
        if self.stop_signal:
            return f"stopped by {self.stop_signal}"
        if t.max_steps and s.step >= t.max_steps:
            return f"reached max_steps={t.max_steps}"
        if t.max_epochs and s.epoch >= t.max_epochs:
            return f"reached max_epochs={t.max_epochs}"
        if t.max_minutes and self._seconds() >= t.max_minutes * 60:
            return f"reached max_minutes={t.max_minutes:g}"
        return None

    def _next_batches(self) -> list[tuple[list[list[int]], list[list[int]], list[int] | None]]:
        """The step's next `accumulate × world` batches (source ids, target ids, start ids or None: `collate`'s
        arguments) in this epoch's seeded order."""
        s, out = self.state, []
        for _ in range(self.cfg.train.accumulate * self.dist.world):
            enc = self.batches.epoch(s.epoch)
            order = epoch_order(len(enc.batches), self.cfg.train.seed, s.epoch)
            idx = enc.batches[order[s.position]]
            out.append(enc.batch(idx))
            s.take_batch(len(order))
        return out

    def train_step(self) -> StepResult:
        t, d = self.cfg.train, self.dist
        step_batches = self._next_batches()
        n_tokens = sum(len(y) + 1 for _, tgt, _ in step_batches for y in tgt)  # over all ranks
        mine = step_batches[d.rank :: d.world]
        loss_sum = nll_sum = 0.0
        autocast = torch.autocast(d.device.type, dtype=torch.bfloat16, enabled=t.precision == "bf16")
        for k, parts in enumerate(mine):
            batch = collate(*parts).to(d.device)
            last = k == len(mine) - 1
            sync = contextlib.nullcontext() if last or not d.active else self.loss_fn.no_sync()
            with sync:
                with autocast:
                    loss, nll = self.loss_fn(batch.src, batch.tgt_in, batch.tgt_out)
                # DDP averages gradients over ranks: scale by world so that they sum instead
                (loss * (d.world / n_tokens)).backward()
            loss_sum, nll_sum = loss_sum + loss.item(), nll_sum + nll.item()
        # ranks agree on the clock (its mean) so that a time-based schedule gives them the same rate
        loss_sum, nll_sum, seconds = d.sum([loss_sum, nll_sum, self._seconds()])
        seconds /= d.world
        if t.clip_norm > 0:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.clip_norm)
        else:
            norm = torch.nn.utils.get_total_norm([p.grad for p in self.model.parameters() if p.grad is not None])
        self.state.step += 1
        lr = self._lr(self.state.step, seconds)
        # gradients are summed over ranks already, so every rank takes the same decision
        finite = math.isfinite(loss_sum) and bool(torch.isfinite(norm))
        if finite:
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return StepResult(loss_sum / n_tokens, nll_sum / n_tokens, n_tokens, lr, finite)

    def _check_finite(self, out: StepResult) -> bool:
        """Count a skipped non-finite step; stop the run after train.max_bad_steps of them in a row.

        No loss scaler exists to lower: fp32 and bf16 share fp32's exponent range, so a NaN/inf here is
        a real fault (a bad batch, a too-high learning rate), not an underflow that scaling would fix."""
        s, limit = self.state, self.cfg.train.max_bad_steps
        if out.finite:
            s.bad_steps = 0
            return True
        s.bad_steps += 1
        s.skipped_steps += 1
        log.warning("step %d: loss or gradient is NaN/inf (loss %s); update skipped (%d in a row, limit %d)",
                    s.step, out.loss, s.bad_steps, limit)
        if s.bad_steps >= limit:
            kept = checkpoint.latest_checkpoint(self.run_dir) if self.dist.main else None
            raise AttnlabError(f"{limit} training steps in a row had a NaN/inf loss or gradient (up to step "
                               f"{s.step}); stopped without saving them. The last good checkpoint is "
                               f"{kept or 'none yet'}: lower train.lr_scale or check the data, then --resume")
        return False

    def fit(self) -> dict[str, Any]:
        t, s = self.cfg.train, self.state
        self._clock = time.monotonic()
        previous = {sig: signal.signal(sig, self._handle_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        per_epoch = math.ceil(len(self.batches.current.batches) / (t.accumulate * self.dist.world))
        total = t.max_steps or (t.max_epochs * per_epoch) or None
        bar = tqdm(total=total, initial=s.step, unit="step", dynamic_ncols=True, disable=None if self.dist.main else True)
        self.model.train()
        self.metrics.start_window()
        last_eval: dict[str, Any] = dict(self.resumed_eval)
        try:
            while (reason := self._done()) is None:
                out = self.train_step()
                bar.update(1)
                if self._check_finite(out):  # a skipped step leaves the weights as they were and the log out
                    self.metrics.add(out)
                if t.max_minutes and not t.max_steps:
                    bar.total = max(s.step + 1, int(s.step / max(self._seconds(), 1e-9) * t.max_minutes * 60))
                if s.step % t.log_every == 0 and self.metrics.steps:
                    r = self.metrics.flush(s, out.lr, self._seconds())
                    bar.set_postfix(loss=f"{r['loss']:.3f}", ppl=f"{r['ppl']:.1f}", lr=f"{r['lr']:.2e}",
                                    tok_s=f"{r['tok_s']:.0f}")
                if s.step % t.eval_every == 0:
                    s.train_seconds = self._seconds()
                    self._clock = time.monotonic()
                    if self.dist.main:
                        last_eval = self.evaluate_and_save()
                        bar.write(_eval_line(last_eval))
        finally:
            bar.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        s.train_seconds = self._seconds()
        self._clock = time.monotonic()
        if self.metrics.steps:
            self.metrics.flush(s, self._lr(s.step, s.train_seconds), s.train_seconds)
        if not self.dist.main:
            self.dist.close()
            return {"reason": reason, "rank": self.dist.rank}
        if not last_eval or last_eval["step"] != s.step:
            last_eval = self.evaluate_and_save()
        log.info("%s: %s", reason, _eval_line(last_eval))
        if t.average_last > 1 and (averaged := self.average_and_compare()) is not None:
            log.info("average of steps %s: %s", averaged["averaged_steps"], _eval_line(averaged))
            last_eval = dict(last_eval, averaged=averaged)
        self.dist.close()
        return {"reason": reason, **last_eval, "machine_gflops": self.machine_gflops}


def _eval_line(r: dict[str, Any]) -> str:
    bleu = "" if r.get("dev_bleu") is None else f" dev BLEU {r['dev_bleu']:.2f}"
    return f"step {r['step']}: dev loss {r['dev_loss']:.3f} (ppl {r['dev_ppl']:.1f}){bleu}{' *best*' if r.get('best') else ''}"


# -- wiring ---------------------------------------------------------------------------------------

def build_trainer(cfg: Config, run_dir: str | Path, resume: bool = False) -> Trainer:
    """This process's threads and rank, the machine's GEMM note under a time budget, the prepared run
    (`attnlab.prepare`), and a trainer over it, resumed from the newest intact checkpoint with `resume`."""
    run_dir, t = Path(run_dir), cfg.train
    if t.threads > 0:
        torch.set_num_threads(t.threads)
    dist = distributed.setup(t.device)
    if dist.device.type == "cpu":
        keep_freed_memory()  # no page faults on the step's large tensors (attnlab/hardware.py)
    gflops = None
    if t.max_minutes and dist.device.type == "cpu" and dist.main:  # what the time budget buys
        gflops = round(matmul_peak(0.5) / 1e9, 1)
        log.info(budget_note(gflops))
    run = prepare_run(cfg, run_dir, dist, resume=resume)
    evaluator = Evaluator(run.cfg, run.tokenizer, run.dev_data, run.dev, dist.device)
    trainer = Trainer(run.cfg, run_dir, run.model, LossComputer(run.model, t.label_smoothing), run.train,
                      evaluator, dist)
    trainer.machine_gflops = gflops
    if resume:
        trainer.resume(run.resume_from)
    return trainer


def train(cfg: Config, run_dir: str | Path, resume: bool = False) -> dict[str, Any]:
    return build_trainer(cfg, run_dir, resume).fit()
