"""The trainer: label-smoothed cross-entropy, Adam with the paper's schedule, token batches, gradient
accumulation and clipping, dev evaluation, checkpoints, exact resume and a wall-clock budget.

Vaswani et al. (2017) section 5: Adam(β1=0.9, β2=0.98, ε=1e-9),
    lrate = d_model^-0.5 · min(step^-0.5, step · warmup_steps^-1.5),
label smoothing ε_ls = 0.1 (`nn/loss.py`). The trainer calls only the model's public encode / decode / logits.

Under torchrun every rank runs this same loop on its own share of each step's batches (the step's
`accumulate × world` batches dealt out round-robin), gradients are summed by DistributedDataParallel,
and the loss is normalised by the step's target tokens over all ranks, so N processes with
`accumulate = a` take the same steps as one process with `accumulate = N·a`. Rank 0 alone evaluates,
logs and writes checkpoints.
"""

from __future__ import annotations

import contextlib
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
from attnlab.data.batching import Batch, collate, epoch_order, make_batches
from attnlab.data.parallel import ParallelData, load_pairs
from attnlab.errors import AttnlabError
from attnlab.fileio import atomic_write_text
from attnlab.hardware import budget_note, matmul_peak
from attnlab.metrics import score
from attnlab.model import Seq2SeqTransformer
from attnlab.nn.loss import label_smoothed_fused
from attnlab.schedule import budget_lr, inverse_sqrt_lr, run_progress
from attnlab.tokenizer import PAD, Tokenizer
from attnlab.translator import Translator

log = logging.getLogger(__name__)


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


def data_spec(value: str) -> str | tuple[str, str]:
    """A config data path: one TSV, or 'SRC_FILE,TGT_FILE' for two aligned text files."""
    parts = [p.strip() for p in value.split(",")]
    return (parts[0], parts[1]) if len(parts) == 2 else value


@dataclass
class EncodedData:
    src: list[list[int]]
    tgt: list[list[int]]
    batches: list[list[int]]  # example indices per batch


def encode_pairs(data: ParallelData, tokenizer: Tokenizer, max_len: int, max_tokens: int,
                 sample_alpha: float = 0.0) -> EncodedData:
    src = tokenizer.encode_src(data.sources, sample_alpha)
    tgt = tokenizer.encode_tgt(data.targets, sample_alpha)
    keep = [i for i in range(len(src)) if 0 < len(src[i]) <= max_len and 0 < len(tgt[i]) <= max_len]
    if len(keep) < len(src):
        log.info("%s: skipped %d pairs longer than %d subwords", data.origin, len(src) - len(keep), max_len)
    if not keep:
        raise AttnlabError(f"no usable sentence pairs in {data.origin}")
    src, tgt = [src[i] for i in keep], [tgt[i] for i in keep]
    batches = make_batches([(len(s), len(t) + 1) for s, t in zip(src, tgt)], max_tokens)
    return EncodedData(src, tgt, batches)


class Trainer:
    """Trains one run directory. Knows nothing of the model's insides: it calls encode/decode/logits."""

    def __init__(self, cfg: Config, run_dir: Path, resume: bool = False) -> None:
        self.cfg, self.run_dir = cfg, run_dir
        t = cfg.train
        if t.threads > 0:
            torch.set_num_threads(t.threads)
        self.dist = distributed.setup(t.device)
        self.machine_gflops: float | None = None
        if t.max_minutes and self.dist.device.type == "cpu" and self.dist.main:  # what the time budget buys
            self.machine_gflops = round(matmul_peak(0.5) / 1e9, 1)
            log.info(budget_note(self.machine_gflops))
        torch.manual_seed(t.seed)
        self.train_data = load_pairs(data_spec(cfg.data.train), cfg.direction)
        self.dev_data = load_pairs(data_spec(cfg.data.dev), cfg.direction)
        tok_dir = run_dir / checkpoint.TOKENIZER_DIR
        # None: start at step 0 (also when --resume finds no intact checkpoint: killed before the first one)
        self.resume_from = checkpoint.latest_checkpoint(run_dir) if resume else None
        if self.resume_from is None and self.dist.main:
            log.info("training the %s tokenizer (%d subwords) on %d pairs", cfg.tokenizer.model_type,
                     cfg.tokenizer.vocab_size, len(self.train_data))
            Tokenizer.train(self.train_data.pairs, cfg.tokenizer, tok_dir, seed=t.seed)
        self.dist.barrier()
        self.tokenizer = Tokenizer.load(tok_dir)
        cfg.model.vocab_size = self.tokenizer.vocab_size
        if self.dist.main:
            checkpoint.save_config(run_dir, cfg)
        self.train_enc = encode_pairs(self.train_data, self.tokenizer, cfg.data.max_tokens_per_sentence, t.max_tokens)
        self._enc_epoch = -1  # the epoch whose sampled segmentation train_enc holds (train.subword_alpha > 0)
        self.dev_enc = encode_pairs(self.dev_data, self.tokenizer, 10**9, t.max_tokens)
        self.model = Seq2SeqTransformer(cfg.model).to(self.dist.device)
        if t.init_embeddings and self.resume_from is None:
            self._init_embeddings(t.init_embeddings)
        self.optimizer = make_optimizer(self.model, t.weight_decay)
        self.loss_fn: nn.Module = LossComputer(self.model, t.label_smoothing)
        if self.dist.active:
            torch.manual_seed(t.seed + 7919 * self.dist.rank)  # same initial weights, different dropout
            ids = [self.dist.device.index] if self.dist.device.type == "cuda" else None
            self.loss_fn = DistributedDataParallel(self.loss_fn, device_ids=ids)
        if t.compile:
            self.loss_fn = torch.compile(self.loss_fn)
        self.state: dict[str, Any] = {"step": 0, "epoch": 0, "position": 0, "best_bleu": -1.0,
                                      "best_dev_loss": math.inf, "train_seconds": 0.0,
                                      "bad_steps": 0, "skipped_steps": 0}  # non-finite steps: in a row, in all
        self.stop_signal: str | None = None
        self._clock = time.monotonic()  # when the current stretch of training began (see _seconds)
        self.resumed_eval: dict[str, Any] = {}  # the logged evaluation of the checkpoint resumed from
        if resume:
            self._resume()

    # -- bookkeeping ------------------------------------------------------------------------------
    def _init_embeddings(self, spec: str) -> None:
        """Start the embedding rows from Word2Vec vectors (attnlab.word2vec.init_embeddings)."""
        from attnlab.word2vec.init_embeddings import init_embedding, load_vector_folders

        vectors = load_vector_folders(spec)
        tok, m = self.tokenizer, self.model
        sides = [(m.src_embed, tok.src)] if m.src_embed is m.tgt_embed else [(m.src_embed, tok.src), (m.tgt_embed, tok.tgt)]
        for emb, proc in sides:
            pieces = [proc.id_to_piece(i) for i in range(proc.get_piece_size())]
            report = init_embedding(emb.weight, vectors, pieces, proc.encode, seed=self.cfg.train.seed)
            if self.dist.main:
                log.info("embeddings from %s: %s", spec, report)

    def _resume(self) -> None:
        ckpt = self.resume_from
        if ckpt is None:
            log.warning("--resume: no intact checkpoint in %s; starting from step 0",
                        self.run_dir / checkpoint.CHECKPOINT_DIR)
            if self.dist.main:
                self._truncate_metrics(0)
            return
        self.state.update(checkpoint.load_checkpoint(ckpt, self.model, self.optimizer))
        if self.dist.active:  # the checkpoint holds rank 0's RNG; give the others their own again
            torch.manual_seed(self.cfg.train.seed + 7919 * self.dist.rank + self.state["step"])
        log.info("resumed from %s (step %d, epoch %d)", ckpt, self.state["step"], self.state["epoch"])
        if self.dist.main:
            self._truncate_metrics(self.state["step"])

    def _truncate_metrics(self, step: int) -> None:
        """Drop log lines written after the checkpoint we resume from, so the log reads as one run;
        keep that checkpoint's own evaluation (a run killed after its last save has nothing left to do)."""
        path = self.run_dir / "metrics.jsonl"
        if path.is_file():
            lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
            kept = []
            for ln in lines:
                try:
                    record = json.loads(ln)
                except ValueError:
                    continue
                if record.get("step", 0) <= step:
                    kept.append(ln)
                    if record.get("step") == step and "dev_loss" in record:
                        self.resumed_eval = record
            atomic_write_text(path, "".join(ln + "\n" for ln in kept))

    def _log(self, record: dict[str, Any]) -> None:
        if not self.dist.main:
            return
        path = self.run_dir / "metrics.jsonl"
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as e:  # a full disk names no file of its own
            raise AttnlabError(f"cannot write {path}: {e.strerror or e}") from None

    def _lr(self, step: int, seconds: float) -> float:
        """The learning rate of optimizer step `step`, taken after `seconds` of training."""
        t = self.cfg.train
        if t.schedule == "inverse_sqrt":
            return inverse_sqrt_lr(step, self.cfg.model.d_model, t.warmup_steps, t.lr_scale)
        epoch_steps = t.max_epochs * math.ceil(len(self.train_enc.batches) / (t.accumulate * self.dist.world))
        progress = run_progress(step - 1, seconds, t.max_steps, t.max_minutes, epoch_steps)
        return budget_lr(progress, t.lr_peak, t.warmup_fraction, t.schedule, t.lr_final_ratio)

    def _seconds(self) -> float:
        """Training seconds so far, this process's clock included (the budget schedules' time)."""
        return self.state["train_seconds"] + time.monotonic() - self._clock

    # -- evaluation ---------------------------------------------------------------------------------
    @torch.no_grad()
    def dev_loss(self) -> tuple[float, float]:
        """Dev NLL per target token and perplexity (teacher forcing, no dropout)."""
        self.model.eval()
        nll_sum, n = 0.0, 0
        for idx in self.dev_enc.batches:
            batch = collate([self.dev_enc.src[i] for i in idx], [self.dev_enc.tgt[i] for i in idx]).to(self.dist.device)
            _, nll = batch_loss(self.model, batch, 0.0)
            nll_sum, n = nll_sum + nll.item(), n + batch.n_tgt_tokens
        self.model.train()
        return nll_sum / n, math.exp(min(nll_sum / n, 50))

    def dev_bleu(self) -> float | None:
        k = self.cfg.train.dev_bleu_sentences
        if k <= 0:
            return None
        refs = self.dev_data.references()[:k]
        self.model.eval()
        translator = Translator(self.cfg, self.tokenizer, self.model)
        hyps = translator.translate([src for src, _ in refs], beam=1)
        self.model.train()
        return score(hyps, [r for _, r in refs], self.cfg.tgt_lang).bleu

    def evaluate_and_save(self) -> dict[str, Any]:
        loss, ppl = self.dev_loss()
        bleu = self.dev_bleu()
        record = {"step": self.state["step"], "epoch": self.state["epoch"], "dev_loss": round(loss, 4),
                  "dev_ppl": round(ppl, 2), "dev_bleu": bleu}
        # best by dev BLEU, ties (e.g. 0.0 early on) broken by dev loss; by dev loss when BLEU is off
        key = (bleu if bleu is not None else -1.0, -loss)
        better = key > (self.state["best_bleu"], -self.state["best_dev_loss"])
        if better:
            self.state["best_bleu"] = bleu if bleu is not None else -1.0
            self.state["best_dev_loss"] = loss
            checkpoint.save_best(self.run_dir, self.model, dict(record, direction=self.cfg.direction))
        record["best"] = better
        self._log(record)
        checkpoint.save_checkpoint(self.run_dir, self.model, self.optimizer, self.state,
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
        loss, ppl = self.dev_loss()
        bleu = self.dev_bleu()
        steps = [int(c.name.split("-")[1]) for c in ckpts]
        record = {"step": self.state["step"], "averaged_steps": steps, "dev_loss": round(loss, 4),
                  "dev_ppl": round(ppl, 2), "dev_bleu": bleu}
        better = (bleu if bleu is not None else -1.0, -loss) > (self.state["best_bleu"], -self.state["best_dev_loss"])
        if better:
            self.state["best_bleu"] = bleu if bleu is not None else -1.0
            self.state["best_dev_loss"] = loss
            checkpoint.save_best(self.run_dir, self.model, dict(record, direction=self.cfg.direction))
        record["best"] = better
        # logged under its own keys, so that curves and --resume read only the checkpoints' evaluations
        self._log({"step": record["step"], "averaged_steps": steps, "averaged_dev_loss": record["dev_loss"],
                   "averaged_dev_bleu": bleu, "best": better})
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
        if t.max_steps and s["step"] >= t.max_steps:
            return f"reached max_steps={t.max_steps}"
        if t.max_epochs and s["epoch"] >= t.max_epochs:
            return f"reached max_epochs={t.max_epochs}"
        if t.max_minutes and self._seconds() >= t.max_minutes * 60:
            return f"reached max_minutes={t.max_minutes:g}"
        return None

    def _epoch_data(self, epoch: int) -> EncodedData:
        """The training pairs as encoded for this epoch: once for the run, or with subword sampling
        (train.subword_alpha > 0) a new sampled segmentation each epoch, seeded by (seed, epoch)."""
        t = self.cfg.train
        if t.subword_alpha > 0 and self._enc_epoch != epoch:
            Tokenizer.seed_sampling(t.seed * 1_000_003 + epoch + 1)
            self.train_enc = encode_pairs(self.train_data, self.tokenizer, self.cfg.data.max_tokens_per_sentence,
                                          t.max_tokens, sample_alpha=t.subword_alpha)
            self._enc_epoch = epoch
        return self.train_enc

    def _next_batches(self) -> list[tuple[list[list[int]], list[list[int]]]]:
        """The step's next `accumulate × world` batches (source and target ids) in this epoch's seeded order."""
        t, s = self.cfg.train, self.state
        out = []
        for _ in range(t.accumulate * self.dist.world):
            enc = self._epoch_data(s["epoch"])
            order = epoch_order(len(enc.batches), t.seed, s["epoch"])
            idx = enc.batches[order[s["position"]]]
            out.append(([enc.src[i] for i in idx], [enc.tgt[i] for i in idx]))
            s["position"] += 1
            if s["position"] == len(order):
                s["epoch"], s["position"] = s["epoch"] + 1, 0
        return out

    def train_step(self) -> dict[str, float]:
        t, d = self.cfg.train, self.dist
        step_batches = self._next_batches()
        n_tokens = sum(len(y) + 1 for _, tgt in step_batches for y in tgt)  # over all ranks
        mine = step_batches[d.rank :: d.world]
        loss_sum = nll_sum = 0.0
        autocast = torch.autocast(d.device.type, dtype=torch.bfloat16, enabled=t.precision == "bf16")
        for k, (src, tgt) in enumerate(mine):
            batch = collate(src, tgt).to(d.device)
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
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        if t.clip_norm > 0:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.clip_norm)
        else:
            norm = torch.nn.utils.get_total_norm(grads)
        self.state["step"] += 1
        lr = self._lr(self.state["step"], seconds)
        # gradients are summed over ranks already, so every rank takes the same decision
        finite = math.isfinite(loss_sum) and bool(torch.isfinite(norm))
        if finite:
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return {"loss": loss_sum / n_tokens, "nll": nll_sum / n_tokens, "tokens": n_tokens, "lr": lr,
                "finite": finite}

    def _check_finite(self, out: dict[str, Any]) -> bool:
        """Count a skipped non-finite step; stop the run after train.max_bad_steps of them in a row.

        No loss scaler exists to lower: fp32 and bf16 share fp32's exponent range, so a NaN/inf here is
        a real fault (a bad batch, a too-high learning rate), not an underflow that scaling would fix."""
        s, limit = self.state, self.cfg.train.max_bad_steps
        if out["finite"]:
            s["bad_steps"] = 0
            return True
        s["bad_steps"] += 1
        s["skipped_steps"] += 1
        log.warning("step %d: loss or gradient is NaN/inf (loss %s); update skipped (%d in a row, limit %d)",
                    s["step"], out["loss"], s["bad_steps"], limit)
        if s["bad_steps"] >= limit:
            kept = checkpoint.latest_checkpoint(self.run_dir) if self.dist.main else None
            raise AttnlabError(f"{limit} training steps in a row had a NaN/inf loss or gradient (up to step "
                               f"{s['step']}); stopped without saving them. The last good checkpoint is "
                               f"{kept or 'none yet'}: lower train.lr_scale or check the data, then --resume")
        return False

    def fit(self) -> dict[str, Any]:
        t, s = self.cfg.train, self.state
        self._clock = time.monotonic()
        previous = {sig: signal.signal(sig, self._handle_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        per_epoch = math.ceil(len(self.train_enc.batches) / (t.accumulate * self.dist.world))
        total = t.max_steps or (t.max_epochs * per_epoch) or None
        bar = tqdm(total=total, initial=s["step"], unit="step", dynamic_ncols=True, disable=None if self.dist.main else True)
        self.model.train()
        window = {"loss": 0.0, "nll": 0.0, "tokens": 0, "steps": 0, "t0": time.monotonic()}
        last_eval: dict[str, Any] = dict(self.resumed_eval)
        try:
            while (reason := self._done()) is None:
                out = self.train_step()
                bar.update(1)
                if self._check_finite(out):  # a skipped step leaves the weights as they were and the log out
                    for k in ("loss", "nll"):
                        window[k] += out[k] * out["tokens"]
                    window["tokens"] += out["tokens"]
                    window["steps"] += 1
                if t.max_minutes and not t.max_steps:
                    elapsed = self._seconds()
                    bar.total = max(s["step"] + 1, int(s["step"] / max(elapsed, 1e-9) * t.max_minutes * 60))
                if s["step"] % t.log_every == 0 and window["steps"]:
                    self._flush_window(window, out["lr"], bar, self._seconds())
                if s["step"] % t.eval_every == 0:
                    s["train_seconds"] = self._seconds()
                    self._clock = time.monotonic()
                    if self.dist.main:
                        last_eval = self.evaluate_and_save()
                        bar.write(_eval_line(last_eval))
        finally:
            bar.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        s["train_seconds"] = self._seconds()
        self._clock = time.monotonic()
        if window["steps"]:
            self._flush_window(window, self._lr(s["step"], s["train_seconds"]), None, s["train_seconds"])
        if not self.dist.main:
            self.dist.close()
            return {"reason": reason, "rank": self.dist.rank}
        if not last_eval or last_eval["step"] != s["step"]:
            last_eval = self.evaluate_and_save()
        log.info("%s: %s", reason, _eval_line(last_eval))
        if t.average_last > 1 and (averaged := self.average_and_compare()) is not None:
            log.info("average of steps %s: %s", averaged["averaged_steps"], _eval_line(averaged))
            last_eval = dict(last_eval, averaged=averaged)
        self.dist.close()
        return {"reason": reason, **last_eval, "machine_gflops": self.machine_gflops}

    def _flush_window(self, w: dict[str, Any], lr: float, bar: tqdm | None, elapsed_total: float) -> None:
        elapsed = max(time.monotonic() - w["t0"], 1e-9)
        loss, nll = w["loss"] / w["tokens"], w["nll"] / w["tokens"]
        record = {"step": self.state["step"], "epoch": self.state["epoch"], "loss": round(loss, 4),
                  "ppl": round(math.exp(min(nll, 50)), 2), "lr": lr, "tok_s": round(w["tokens"] / elapsed, 1),
                  "elapsed_s": round(elapsed_total, 1)}
        self._log(record)
        if bar is not None:
            bar.set_postfix(loss=f"{loss:.3f}", ppl=f"{record['ppl']:.1f}", lr=f"{lr:.2e}", tok_s=f"{record['tok_s']:.0f}")
        w.update(loss=0.0, nll=0.0, tokens=0, steps=0, t0=time.monotonic())


def make_optimizer(model: nn.Module, weight_decay: float) -> torch.optim.Optimizer:
    """Adam(β1=0.9, β2=0.98, ε=1e-9) as in the paper; with weight decay, AdamW decaying only the
    matrices (embeddings included), never biases or LayerNorm gains."""
    betas, eps = (0.9, 0.98), 1e-9
    if weight_decay <= 0:
        return torch.optim.Adam(model.parameters(), lr=0.0, betas=betas, eps=eps)
    params = list(model.parameters())
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=0.0, betas=betas, eps=eps)


def _eval_line(r: dict[str, Any]) -> str:
    bleu = "" if r.get("dev_bleu") is None else f" dev BLEU {r['dev_bleu']:.2f}"
    return f"step {r['step']}: dev loss {r['dev_loss']:.3f} (ppl {r['dev_ppl']:.1f}){bleu}{' *best*' if r.get('best') else ''}"


def train(cfg: Config, run_dir: str | Path, resume: bool = False) -> dict[str, Any]:
    return Trainer(cfg, Path(run_dir), resume=resume).fit()
