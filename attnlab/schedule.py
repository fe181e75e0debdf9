"""Learning-rate schedules: the paper's inverse square root, and warm-up + decay fitted to a budget.

Vaswani et al. (2017) section 5.3:
    lrate = d_model^-0.5 · min(step^-0.5, step · warmup_steps^-1.5)
It never ends, so a short run stops while the rate is still high (or, if the run is shorter than the
warm-up, before it ever peaks). The budget schedules instead know where the run ends and decay to
`lr_final_ratio · lr_peak` there, as nanoGPT and most short-run recipes do:

    p = progress through the run in [0, 1]
    lrate = lr_peak · min(1, p / warmup_fraction) · decay(p)
    cosine: decay = r + (1 - r) · ½(1 + cos(π · q)),   linear: decay = r + (1 - r) · (1 - q)
    with q = (p - warmup_fraction) / (1 - warmup_fraction) after the warm-up, r = lr_final_ratio.

The paper's schedule can also end that way: with `cooldown_fraction` c, its rate is multiplied by a
linear ramp from 1 to 0 over the last c of the budget (warm-up, then the paper's curve, then a
cool-down: the "warmup-stable-decay" shape of Hägele et al. 2024, here with the paper's decay in the
middle). The long warm-up that a post-norm model needs is kept, and the run still ends at rate 0.

    lrate = inverse_sqrt(step) · min(1, (1 - p) / c)

Progress is the furthest along of the run's limits: steps against `max_steps` (a resumed run then
repeats the same rates bit for bit) and training seconds against `max_minutes` (the warm-up and the
decay then fit the number of steps this machine actually takes in the budget, whatever its speed).
"""

from __future__ import annotations

import math

SCHEDULES = ("inverse_sqrt", "cosine", "linear")


def inverse_sqrt_lr(step: int, d_model: int, warmup: int, scale: float = 1.0) -> float:
    """The paper's learning rate at optimizer step `step` (1-based)."""
    step = max(step, 1)
    return scale * d_model**-0.5 * min(step**-0.5, step * warmup**-1.5)


def budget_lr(progress: float, peak: float, warmup_fraction: float, shape: str, final_ratio: float = 0.0) -> float:
    """Warm-up then cosine or linear decay, as a function of progress in [0, 1] (clamped)."""
    p = min(max(progress, 0.0), 1.0)
    if warmup_fraction > 0 and p < warmup_fraction:
        return peak * p / warmup_fraction
    q = (p - warmup_fraction) / max(1.0 - warmup_fraction, 1e-12)
    if shape == "cosine":
        decay = 0.5 * (1.0 + math.cos(math.pi * q))
    elif shape == "linear":
        decay = 1.0 - q
    else:
        raise ValueError(f"unknown schedule shape {shape!r} (known: cosine, linear)")
    return peak * (final_ratio + (1.0 - final_ratio) * decay)


def cooldown_factor(progress: float, fraction: float) -> float:
    """1 until the last `fraction` of the budget, then a linear ramp to 0 at its end (clamped)."""
    if fraction <= 0:
        return 1.0
    return min(1.0, max(0.0, (1.0 - progress) / fraction))


def run_progress(step: int, seconds: float, max_steps: int, max_minutes: float, epoch_steps: int) -> float:
    """How far through its budget a run is: the furthest along of its limits (steps, epochs turned
    into steps, training seconds against max_minutes), since the run stops at the first one reached."""
    parts = [step / n for n in (max_steps, epoch_steps) if n]
    if max_minutes:
        parts.append(seconds / (60.0 * max_minutes))
    if not parts:
        raise ValueError("a cosine or linear schedule needs train.max_steps, train.max_epochs or train.max_minutes")
    return max(parts)
