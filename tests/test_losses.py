import itertools

import pytest
import torch

from sepaudio.losses import create_loss
from sepaudio.metrics import pit, sdr, si_sdr, si_sdr_improvement


def test_si_sdr_values():
    ref = torch.randn(2, 8000)
    assert (si_sdr(ref, ref) > 100).all()
    noisy = ref + 0.1 * torch.randn(2, 8000)
    assert torch.allclose(si_sdr(3.0 * noisy, ref), si_sdr(noisy, ref), atol=1e-3)  # scale invariant
    assert torch.allclose(si_sdr(noisy, ref), torch.full((2,), 20.0), atol=0.5)


def test_improvement_is_relative_to_mixture():
    ref, other = torch.randn(8000), torch.randn(8000)
    mix = ref + other
    assert abs(si_sdr_improvement(mix, ref, mix).item()) < 1e-4
    assert si_sdr_improvement(ref + 0.01 * other, ref, mix) > 30


def test_sdr_bss_eval_runs():
    ref = torch.randn(1, 4000)
    assert sdr(ref + 0.1 * torch.randn(1, 4000), ref).item() == pytest.approx(20, abs=1.5)


@pytest.mark.parametrize("loss_name", ["si_sdr", "pit_si_sdr"])
def test_silent_references_give_finite_loss_and_gradients(loss_name):
    est = torch.zeros(2, 2, 4000, requires_grad=True)
    silent = torch.zeros(2, 2, 4000)
    batch = {"sources": silent, "target": silent[:, 0]}
    loss = create_loss(loss_name)
    value, _ = loss(est[:, :1] if loss_name == "si_sdr" else est, batch)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(est.grad).all()
    est2 = torch.randn(2, 2, 4000, requires_grad=True)
    value2, _ = loss(est2[:, :1] if loss_name == "si_sdr" else est2, batch)
    value2.backward()
    assert torch.isfinite(value2) and torch.isfinite(est2.grad).all()


@pytest.mark.parametrize("n_src", [2, 3, 4, 5])
def test_pit_finds_the_permutation(n_src):
    ref = torch.randn(3, n_src, 2000)
    perm = torch.stack([torch.randperm(n_src) for _ in range(3)])
    est = torch.stack([ref[b, perm[b]] for b in range(3)]) + 0.05 * torch.randn(3, n_src, 2000)
    best, found = pit(si_sdr, est, ref)
    assert all(torch.equal(est[b, found[b]], est[b][found[b]]) for b in range(3))
    aligned = torch.stack([est[b, found[b]] for b in range(3)])
    assert (si_sdr(aligned, ref).mean(-1) > 20).all()
    # the Hungarian answer equals brute force over all permutations
    for b in range(3):
        brute = max(si_sdr(est[b, list(p)], ref[b]).mean().item() for p in itertools.permutations(range(n_src)))
        assert best[b].item() == pytest.approx(brute, abs=1e-4)


def test_pit_loss_gradient_flows():
    est = torch.randn(2, 3, 1000, requires_grad=True)
    value, logs = create_loss("pit_si_sdr")(est, {"sources": torch.randn(2, 3, 1000)})
    value.backward()
    assert est.grad.abs().sum() > 0 and logs["si_sdr"] == -value.detach()
    with pytest.raises(KeyError, match="unknown loss"):
        create_loss("nope")


def test_pit_trains_after_a_call_in_inference_mode():
    """Evaluation (inference mode) before a training step must not poison PIT (torchmetrics' cache did)."""
    with torch.inference_mode():
        pit(si_sdr, torch.randn(1, 2, 100), torch.randn(1, 2, 100))
    est = torch.randn(1, 2, 100, requires_grad=True)
    value, _ = create_loss("pit_si_sdr")(est, {"sources": torch.randn(1, 2, 100)})
    value.backward()
    assert est.grad is not None
