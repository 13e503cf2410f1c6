"""Where a dataset item's random draws (crops, mixtures, gains) come from, so that training processes, data workers
and epochs each draw their own items, and a resumed run draws the same ones as an uninterrupted run."""
from __future__ import annotations

import torch


def item_seed(seed: int | None, index: int) -> list[int] | int:
    """The seed of item ``index``'s generator (``np.random.default_rng(item_seed(...))``).

    With ``seed`` set the item is fixed: ``[seed, index]`` (validation and test sets). Without, a fresh draw from
    the process's torch generator, which ``sepaudio train`` seeds per rank and Lightning per data worker (from the
    rank's generator, anew every epoch): every rank, worker and epoch draws different items, and since that
    generator's state is in the checkpoint, a resumed run draws what the uninterrupted run drew.
    """
    return [seed, index] if seed is not None else int(torch.randint(0, 2**62, ()))
