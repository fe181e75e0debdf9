"""The only place that saves and loads model state. Weights and optimizer tensors go to safetensors
(never pickle); counters, RNG-free metadata and checksums go to JSON. Every write is atomic.

A run directory is self-contained:
    config.toml            the full typed config (vocab size set from the tokenizer)
    tokenizer/             sentencepiece model(s)
    model.safetensors      the best weights so far (what `translate` and `evaluate` load)
    scores.json            dev scores of those weights
    manifest.json          sha256 of the files above
    metrics.jsonl          the training log
    checkpoints/step-N/    model.safetensors, optimizer.safetensors, state.json: everything `--resume` needs
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from attnlab.config import Config, config_to_toml, load_config, split_direction
from attnlab.errors import AttnlabError
from attnlab.export import CONFIG_COPY, is_export
from attnlab.fileio import atomic_write_bytes, atomic_write_text, sha256_file
from attnlab.model import Seq2SeqTransformer
from attnlab.tokenizer import Tokenizer

log = logging.getLogger(__name__)

CONFIG_FILE, WEIGHTS_FILE, SCORES_FILE, MANIFEST_FILE = "config.toml", "model.safetensors", "scores.json", "manifest.json"
TOKENIZER_DIR, CHECKPOINT_DIR = "tokenizer", "checkpoints"


# -- weights -------------------------------------------------------------------------------------

def weights_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with tied tensors stored once (under the first name that holds them)."""
    seen: set[int] = set()
    out: dict[str, torch.Tensor] = {}
    for name, t in model.state_dict().items():
        if t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        out[name] = t.detach().cpu().contiguous()
    return out


def weights_bytes(model: nn.Module) -> bytes:
    return st_save(weights_dict(model))


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return st_load(path.read_bytes())
    except FileNotFoundError:
        raise AttnlabError(f"weights file missing: {path}") from None
    except (SafetensorError, ValueError, OSError) as e:
        raise AttnlabError(f"weights file is corrupt or truncated: {path} ({e})") from None


def load_weights(model: nn.Module, path: Path) -> None:
    apply_weights(model, _read_safetensors(path), path)


def apply_weights(model: nn.Module, tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Load tensors (read from `path`, named in errors) into the model after checking names and shapes."""
    expected = weights_dict(model)
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise AttnlabError(f"weights file {path} does not fit this model (missing {missing[:3]}, unexpected {unexpected[:3]})")
    for name, t in tensors.items():
        if t.shape != expected[name].shape:
            raise AttnlabError(f"weights file {path}: {name} has shape {tuple(t.shape)}, model expects {tuple(expected[name].shape)}")
    model.load_state_dict(tensors, strict=False)  # tied aliases are filled through the shared tensor


# -- training checkpoints --------------------------------------------------------------------------

def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for idx, st in sd["state"].items():
        for key, value in st.items():
            if torch.is_tensor(value):
                tensors[f"state.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, t in tensors.items():
        if name.startswith("state."):
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = t
    for name, value in meta["scalars"].items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(run_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    trainer_state: dict[str, Any], keep: int = 2) -> Path:
    """Write checkpoints/step-N as a whole (temp folder + rename), then prune all but the newest `keep`.

    A write that fails (disk full, read-only folder) removes its temp folder, keeps every older
    checkpoint, and raises AttnlabError naming the checkpoint."""
    root = run_dir / CHECKPOINT_DIR
    final = root / f"step-{trainer_state['step']:08d}"
    tmp = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
        _write_checkpoint(tmp, final, model, optimizer, trainer_state)
    except OSError as e:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        kept = latest_checkpoint(run_dir)
        raise AttnlabError(f"cannot write checkpoint {final}: {e.strerror or e}"
                           f"{f' ({e.filename})' if e.filename else ''}; the newest intact checkpoint, "
                           f"{kept or 'none'}, is kept") from None
    for old in sorted(root.glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    return final


def _write_checkpoint(tmp: Path, final: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                      trainer_state: dict[str, Any]) -> None:
    opt_tensors, opt_meta = _optimizer_tensors(optimizer)
    opt_tensors["rng.torch"] = torch.get_rng_state()
    atomic_write_bytes(tmp / WEIGHTS_FILE, weights_bytes(model))
    atomic_write_bytes(tmp / "optimizer.safetensors", st_save(opt_tensors))
    state = dict(trainer_state, optimizer=opt_meta,
                 sha256={f: sha256_file(tmp / f) for f in (WEIGHTS_FILE, "optimizer.safetensors")})
    atomic_write_text(tmp / "state.json", json.dumps(state, indent=1))  # written last: marks it complete
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)


def _intact(ckpt: Path) -> bool:
    try:
        state = json.loads((ckpt / "state.json").read_text())
        return all(sha256_file(ckpt / f) == h for f, h in state["sha256"].items())
    except (OSError, ValueError, KeyError):
        return False


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest intact checkpoint; corrupt newer ones are reported and skipped."""
    for ckpt in sorted((run_dir / CHECKPOINT_DIR).glob("step-*"), reverse=True):
        if _intact(ckpt):
            return ckpt
        log.warning("checkpoint %s is incomplete or corrupt; falling back to an older one", ckpt)
    return None


def load_checkpoint(ckpt: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore weights, optimizer and torch RNG; return the trainer state (step, epoch, position, best)."""
    state = json.loads((ckpt / "state.json").read_text())
    load_weights(model, ckpt / WEIGHTS_FILE)
    tensors = _read_safetensors(ckpt / "optimizer.safetensors")
    torch.set_rng_state(tensors.pop("rng.torch"))
    _restore_optimizer(optimizer, tensors, state.pop("optimizer"))
    return state


def intact_checkpoints(run_dir: Path) -> list[Path]:
    """Every intact checkpoint of a run, oldest first."""
    return [c for c in sorted((run_dir / CHECKPOINT_DIR).glob("step-*")) if _intact(c)]


def checkpoint_step(ckpt: Path) -> int:
    """The optimizer step a checkpoints/step-N folder was written at."""
    return int(ckpt.name.removeprefix("step-"))


def average_weights(ckpts: list[Path]) -> dict[str, torch.Tensor]:
    """The element-wise mean of the checkpoints' weights (Vaswani et al. 2017, section 6.1: "we used a
    single model obtained by averaging the last 5 checkpoints"), accumulated in float64."""
    if not ckpts:
        raise AttnlabError("no checkpoints to average")
    total: dict[str, torch.Tensor] = {}
    for ckpt in ckpts:
        weights = _read_safetensors(ckpt / WEIGHTS_FILE)
        if total and weights.keys() != total.keys():
            raise AttnlabError(f"{ckpt / WEIGHTS_FILE} holds other tensors than {ckpts[0] / WEIGHTS_FILE}")
        for name, t in weights.items():
            if name in total and t.shape != total[name].shape:
                raise AttnlabError(f"{ckpt / WEIGHTS_FILE}: {name} has shape {tuple(t.shape)}, "
                                   f"not {tuple(total[name].shape)}")
            total[name] = total.get(name, 0) + t.double()
    return {name: (t / len(ckpts)).float() for name, t in total.items()}


# -- the run directory -----------------------------------------------------------------------------

def save_config(run_dir: Path, cfg: Config) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / CONFIG_FILE, config_to_toml(cfg))
    if (run_dir / WEIGHTS_FILE).is_file():
        write_manifest(run_dir)


def save_best(run_dir: Path, model: nn.Module, scores: dict[str, Any]) -> None:
    """The weights translate/evaluate use, their scores, and the manifest of checksums."""
    try:
        atomic_write_bytes(run_dir / WEIGHTS_FILE, weights_bytes(model))
        atomic_write_text(run_dir / SCORES_FILE, json.dumps(scores, indent=1))
        write_manifest(run_dir)
    except OSError as e:  # a full disk names no file: say which one we were writing
        for partial in run_dir.glob(".*.tmp-*"):  # atomic_write_bytes' temp files
            partial.unlink(missing_ok=True)
        raise AttnlabError(f"cannot write the best weights to {run_dir / WEIGHTS_FILE}: {e.strerror or e}; "
                           f"the checkpoints in {run_dir / CHECKPOINT_DIR} are kept (--resume)") from None


def write_manifest(run_dir: Path) -> None:
    """sha256 of the files inference reads, so that silent corruption is caught on load."""
    files = [CONFIG_FILE, WEIGHTS_FILE, *(f"{TOKENIZER_DIR}/{p.name}" for p in sorted((run_dir / TOKENIZER_DIR).glob("*.model")))]
    manifest = {f: sha256_file(run_dir / f) for f in files}
    atomic_write_text(run_dir / MANIFEST_FILE, json.dumps(manifest, indent=1))


def verify_manifest(run_dir: Path) -> None:
    path = run_dir / MANIFEST_FILE
    if not path.is_file():
        return
    for name, digest in json.loads(path.read_text()).items():
        f = run_dir / name
        if not f.is_file():
            raise AttnlabError(f"{f} is missing from the model directory")
        if sha256_file(f) != digest:
            raise AttnlabError(f"{f} does not match its checksum in {path}: the file is corrupt or was changed")


def read_scores(run_dir: Path) -> dict[str, Any] | None:
    """scores.json of the best weights, or None where there is none or it is unreadable: scores are optional
    (older runs, hand-made folders, exports); the manifest guards the weights."""
    try:
        scores = json.loads((run_dir / SCORES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return scores if isinstance(scores, dict) else None


def check_direction(run_dir: Path, cfg: Config) -> None:
    """The best weights' scores.json records the direction they were trained for; it must be the config's."""
    trained = (read_scores(run_dir) or {}).get("direction")
    if trained is not None and trained != cfg.direction:
        raise AttnlabError(f"{run_dir / SCORES_FILE}: these weights were trained for {trained}, but {run_dir / CONFIG_FILE} "
                           f"says {cfg.direction}; the folder mixes files of two runs")


def choose_direction(cfg: Config, direction: str | None, model: str) -> Config:
    """The config translating `direction`: a model of both directions takes either, any other model only its own."""
    if direction is None or direction == cfg.direction:
        return cfg
    split_direction(direction)
    if not cfg.bidirectional:
        raise AttnlabError(f"{model} translates {cfg.direction} only (it was trained in one direction)",
                           field="direction")
    return dataclasses.replace(cfg, direction=direction)


def load_run_config(run_dir: Path) -> Config:
    if not run_dir.is_dir():
        raise AttnlabError(f"model directory not found: {run_dir}")
    if not (run_dir / CONFIG_FILE).is_file():
        raise AttnlabError(f"{run_dir} is not an attnlab model directory: {CONFIG_FILE} is missing")
    return load_config(run_dir / CONFIG_FILE)


@dataclass
class Run:
    """A trained run directory, loaded and checked: what every engine and exporter starts from."""

    cfg: Config
    tokenizer: Tokenizer
    model: Seq2SeqTransformer  # the best weights, in eval mode


def load_run(run_dir: str | Path, direction: str | None = None) -> Run:
    """Config, manifest checksums, the weights' direction, tokenizer and best weights of a run directory;
    `direction` (a model of both directions) picks the one it translates (None: its config's)."""
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    verify_manifest(run_dir)
    check_direction(run_dir, cfg)
    cfg = choose_direction(cfg, direction, str(run_dir))
    tokenizer = Tokenizer.load(run_dir / TOKENIZER_DIR)
    if cfg.bidirectional and not tokenizer.language_tags:
        raise AttnlabError(f"{run_dir / TOKENIZER_DIR} has no language tags, but {run_dir / CONFIG_FILE} says the "
                           "model translates both directions; the folder mixes files of two runs")
    model = Seq2SeqTransformer(cfg.model)
    load_weights(model, run_dir / WEIGHTS_FILE)
    return Run(cfg, tokenizer, model.eval())


def load_export(export_dir: str | Path, model_file: str, engine: str, command: str) -> tuple[Config, Tokenizer]:
    """The run's config and tokenizer inside an export folder of `engine` (`attnlab.export`)."""
    export_dir = Path(export_dir)
    if not is_export(export_dir, model_file):
        raise AttnlabError(f"{export_dir} is not {engine} export of an attnlab model (run `attnlab export {command}` first)")
    return load_config(export_dir / CONFIG_COPY), Tokenizer.load(export_dir)
