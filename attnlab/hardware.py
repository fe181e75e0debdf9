"""How fast this machine multiplies matrices: the fp32 GEMM peak that quality figures are quoted beside.

The reference budget for attnlab's quality figures is 2 cores of a common laptop, an fp32 GEMM peak of
about 150-170 GFLOP/s on 1024 x 1024 matrices. `matmul_peak` measures the same figure here, with the
threads torch is set to use, so that a run can say how its machine compares. `keep_freed_memory` stops
glibc from handing large freed blocks back to the kernel, which a CPU training step otherwise pays for
in page faults every step.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
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


def keep_freed_memory() -> bool:
    """Keep freed memory in the process instead of returning it to the kernel (glibc only; True if set).

    glibc serves every block above its mmap threshold (at most 32 MB) with a fresh mmap and unmaps it on
    free, so the next allocation of that size faults its pages in again, 4 KiB at a time. A training step
    allocates several such blocks (the output layer's logits and their gradient are N x V floats, ~64 MB
    for 2,000 target tokens and 8,000 subwords), and on a CPU the faults cost ~14 % of the step. With
    M_MMAP_MAX = 0 large blocks come from the heap, and a large M_TRIM_THRESHOLD keeps the heap's freed top,
    so the next step reuses the same pages. The process keeps its peak memory until it exits; the same as
    running under jemalloc or tcmalloc, without preloading them."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    m_trim_threshold, m_mmap_max = -1, -4  # <malloc.h>
    return bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, 2**31 - 1))


def budget_note(gflops: float) -> str:
    """One line comparing a measured peak with the reference budget."""
    lo, hi = REFERENCE_GFLOPS
    line = f"fp32 matmul peak {gflops:.0f} GFLOP/s with {torch.get_num_threads()} thread(s) (reference budget {lo:.0f}-{hi:.0f})"
    if gflops < 0.8 * lo:
        line += f": this machine is about {lo / gflops:.1f}x slower than the reference, so a time budget buys fewer steps"
    return line
