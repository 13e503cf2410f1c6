"""The machine line every benchmark prints first: CPU model, torch's CPU capability, cores, torch version (figures
compare only within one run, on one machine)."""
from __future__ import annotations

import os
import platform

import torch


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def machine_line() -> str:
    return (f"machine: {cpu_model()}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
            f"{os.cpu_count()} cores; torch {torch.__version__}")
