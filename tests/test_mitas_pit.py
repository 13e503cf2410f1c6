"""Blind separation of N sources: permutation-invariant SI-SDR (Hungarian beyond three sources) and training."""
import itertools

import pytest
import torch

from sepaudio.losses import create_loss
from sepaudio.metrics import pit, si_sdr
from sepaudio.models import ConvTasNet, MiTAS

SMALL = dict(n_filters=16, filter_length=8, tcn=dict(channels=8, hidden=16, skip_channels=8, blocks=3, repeats=2))


def brute_force(est, ref):
    """Best mean SI-SDR over every permutation. Shape: (batch, n, time) -> (batch,), perms (batch, n)."""
    best, perms = [], []
    for e, r in zip(est, ref):
        scores = {p: si_sdr(e[list(p)], r).mean() for p in itertools.permutations(range(e.shape[0]))}
        p = max(scores, key=scores.get)
        best.append(scores[p])
        perms.append(p)
    return torch.stack(best), torch.tensor(perms)


@pytest.mark.parametrize("n_src", [2, 3, 4, 5])
def test_pit_matches_brute_force(n_src):
    gen = torch.Generator().manual_seed(n_src)
    ref = torch.randn(3, n_src, 400, generator=gen)
    shuffle = torch.stack([torch.randperm(n_src, generator=gen) for _ in range(3)])
    est = torch.stack([r[p] for r, p in zip(ref, shuffle)]) + 0.8 * torch.randn(3, n_src, 400, generator=gen)
    best, perm = pit(si_sdr, est, ref)
    want_best, want_perm = brute_force(est, ref)
    torch.testing.assert_close(best, want_best, rtol=1e-4, atol=1e-4)
    assert torch.equal(perm, want_perm)
    # the permutation lines estimates up with references: applying it gives the best score
    aligned = torch.stack([e[p] for e, p in zip(est, perm)])
    torch.testing.assert_close(si_sdr(aligned, ref).mean(-1), best, rtol=1e-4, atol=1e-4)


def test_pit_loss_is_permutation_invariant_for_four_sources():
    loss = create_loss("pit_si_sdr")
    ref = torch.randn(2, 4, 300)
    est = ref + 0.3 * torch.randn(2, 4, 300)
    value, logs = loss(est, {"sources": ref})
    shuffled, _ = loss(est[:, [2, 0, 3, 1]], {"sources": ref})
    torch.testing.assert_close(value, shuffled)
    assert logs["si_sdr"] > 5


def tones(n_src: int, batch: int, length: int, gen: torch.Generator) -> torch.Tensor:
    """Sources that a small model can learn to tell apart: source k is a tone in its own band, random phase.

    Shape: ``(batch, n_src, length)``.
    """
    t = torch.arange(length) / 8000
    freqs = torch.tensor([300.0, 900.0, 1800.0, 3000.0][:n_src])
    phase = 6.28 * torch.rand(batch, n_src, 1, generator=gen)
    amp = 0.2 + 0.8 * torch.rand(batch, n_src, 1, generator=gen)
    return amp * torch.sin(6.28 * freqs[:, None] * t + phase)


@pytest.mark.slow
@pytest.mark.parametrize("cls", [ConvTasNet, MiTAS])
def test_pit_training_learns_to_separate_three_sources(cls):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = cls(**SMALL, n_src=3)
    loss_fn = create_loss("pit_si_sdr")
    optim = torch.optim.Adam(model.parameters(), lr=1e-2)
    valid = tones(3, 4, 800, torch.Generator().manual_seed(99))
    batch = {"sources": valid, "mixture": valid.sum(1)}
    with torch.no_grad():
        before, _ = loss_fn(model(batch["mixture"]), batch)
    for _ in range(20):
        sources = tones(3, 4, 800, gen)
        loss, _ = loss_fn(model(sources.sum(1)), {"sources": sources})
        optim.zero_grad()
        loss.backward()
        optim.step()
    with torch.no_grad():
        after, logs = loss_fn(model(batch["mixture"]), batch)
    assert after < before - 10  # at least 10 dB better SI-SDR on held-out mixtures
