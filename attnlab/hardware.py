"""How fast this machine multiplies matrices: the fp32 GEMM peak that quality figures are quoted beside.

The reference budget for attnlab's quality figures is 2 cores of a common laptop, an fp32 GEMM peak of
about 150-170 GFLOP/s on 1024 x 1024 matrices. `matmul_peak` measures the same figure here, with the
threads torch is set to use, so that a run can say how its machine compares.
"""

from __future__ import annotations

import time

import torch

REFERENCE_GFLOPS = (150.0, 170.0)  # fp32 GEMM 1024², 2 cores of a common laptop


def matmul_peak(seconds: float = 1.0, n: int = 1024) -> float:
    """fp32 n x n matrix products per second, in FLOP/s (2n³ each), over about `seconds`."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        count += 1
    return count * 2 * n**3 / (time.perf_counter() - t0)


def budget_note(gflops: float) -> str:
    """One line comparing a measured peak with the reference budget."""
    lo, hi = REFERENCE_GFLOPS
    line = f"fp32 matmul peak {gflops:.0f} GFLOP/s with {torch.get_num_threads()} thread(s) (reference budget {lo:.0f}-{hi:.0f})"
    if gflops < 0.8 * lo:
        line += f": this machine is about {lo / gflops:.1f}x slower than the reference, so a time budget buys fewer steps"
    return line
