"""Process-wide settings that every ``sepaudio`` command runs with (and the benchmarks, to time what users run).

- **Subnormal floats flushed to zero.** Trained TCN weights drive activations into subnormal floats, which x86 CPUs
  compute many times slower: a tse_mini TseNet's training step took 1.55x as long after 10 epochs as at the start.
  Flushing them changes nothing above 1e-38.
- **Freed tensor memory kept for reuse.** glibc's malloc hands the big blocks of freed tensors back to the kernel
  (blocks over its mmap threshold are unmapped, and the heap's top is trimmed), so the next call faults every page
  of them in again. Blocks of up to 1 GiB now come from the heap, and up to 1 GiB of free heap stays mapped. On the
  project's 2-core VM (``benchmarks/bench_allocator.py``, fresh processes) the default Conv-TasNet separated 10 s in
  1.51 s instead of 2.67 s, and a training step took 2.47 s instead of 2.92 s; the price is a higher peak RSS (the
  heap keeps what it had and fragments): +3 % for that inference, +29 % for the training step.
"""
from __future__ import annotations

import ctypes
import sys

#: glibc mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
KEEP_BYTES = 1 << 30


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed blocks of up to :data:`KEEP_BYTES` for reuse instead of returning them to the
    kernel. Returns whether it applied (glibc on Linux); elsewhere nothing changes."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process already runs on
    except (OSError, AttributeError):  # a C library without mallopt
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, KEEP_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_BYTES))


def configure() -> None:
    """Apply both settings to this process (imports torch)."""
    import torch

    torch.set_flush_denormal(True)
    keep_freed_memory()
