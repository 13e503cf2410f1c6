"""Diagonal-covariance GMM universal background model, trained by EM with binary splitting (torch, any device)."""
from __future__ import annotations

import math

import torch
from torch import nn
from tqdm import tqdm

#: frames per E-step chunk: bounds the ``(chunk, components)`` posterior matrix
CHUNK = 32768


class DiagGMM(nn.Module):
    """A diagonal-covariance Gaussian mixture; its parameters are buffers so ``.to(device)`` moves them.

    Args:
        n_components: C.
        dim: D, feature dimension.

    Shape:
        features ``(frames, dim)`` -> log-likelihoods / posteriors ``(frames, n_components)``.
    """

    def __init__(self, n_components: int, dim: int):
        super().__init__()
        self.register_buffer("weights", torch.full((n_components,), 1.0 / n_components))
        self.register_buffer("means", torch.zeros(n_components, dim))
        self.register_buffer("variances", torch.ones(n_components, dim))

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def component_log_likelihoods(self, x: torch.Tensor) -> torch.Tensor:
        """``log w_c + log N(x | mu_c, diag(var_c))`` for every frame and component.

        Shape: ``(frames, dim)`` -> ``(frames, n_components)``.
        """
        precision = 1.0 / self.variances
        const = (torch.log(self.weights) - 0.5 * (torch.log(self.variances).sum(1) + self.dim * math.log(2 * math.pi)
                                                  + (self.means**2 * precision).sum(1)))
        return const + x @ (self.means * precision).T - 0.5 * (x**2) @ precision.T

    def posteriors(self, x: torch.Tensor) -> torch.Tensor:
        """Component responsibilities. Shape: ``(frames, dim)`` -> ``(frames, n_components)``, rows sum to 1."""
        return torch.softmax(self.component_log_likelihoods(x), dim=1)

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        """Mean per-frame log-likelihood. Shape: ``(frames, dim)`` -> scalar."""
        return torch.cat([torch.logsumexp(self.component_log_likelihoods(c), 1) for c in x.split(CHUNK)]).mean()

    @torch.no_grad()
    def em_step(self, x: torch.Tensor, var_floor: torch.Tensor) -> None:
        """One EM iteration on all frames (processed in chunks). Shape: x ``(frames, dim)``, var_floor ``(dim,)``."""
        occ = torch.zeros_like(self.weights)
        first = torch.zeros_like(self.means)
        second = torch.zeros_like(self.means)
        for chunk in x.split(CHUNK):
            post = self.posteriors(chunk)
            occ += post.sum(0)
            first += post.T @ chunk
            second += post.T @ chunk**2
        keep = occ > 1e-3 * x.shape[0] / self.n_components
        occ_safe = occ.clamp_min(1e-10).unsqueeze(1)
        means = first / occ_safe
        variances = torch.maximum(second / occ_safe - means**2, var_floor)
        # A component that lost its frames keeps its old parameters (it will be split over again).
        self.means.copy_(torch.where(keep.unsqueeze(1), means, self.means))
        self.variances.copy_(torch.where(keep.unsqueeze(1), variances, self.variances))
        self.weights.copy_((occ + 1e-10) / (occ.sum() + 1e-10 * self.n_components))

    @torch.no_grad()
    def split(self, target: int, generator: torch.Generator | None = None) -> None:
        """Split the heaviest components until there are ``target``: the two halves' means move apart by 0.2
        standard deviations along a random direction (a fixed direction would keep symmetric data stuck)."""
        n_new = min(target - self.n_components, self.n_components)
        heavy = torch.argsort(self.weights, descending=True)[:n_new]
        direction = torch.randn(n_new, self.dim, generator=generator).to(self.means.device)
        offset = 0.2 * self.variances[heavy].sqrt() * direction
        means = torch.cat([self.means, self.means[heavy] + offset])
        means[heavy] -= offset
        weights = torch.cat([self.weights, self.weights[heavy] / 2])
        weights[heavy] /= 2
        self.weights = weights
        self.means = means
        self.variances = torch.cat([self.variances, self.variances[heavy]])


def train_ubm(frames: torch.Tensor, n_components: int, iterations: int = 4, final_iterations: int = 10,
              progress: bool = True, seed: int = 0) -> DiagGMM:
    """Train a diagonal GMM-UBM by EM, growing it from one Gaussian by binary splitting.

    Args:
        frames: pooled training features (on the device to train on).
        n_components: final number of Gaussians.
        iterations: EM iterations after every split.
        final_iterations: EM iterations once all components exist.
        progress: show a progress bar.
        seed: of the split directions.

    Returns:
        The trained :class:`DiagGMM`, on ``frames``' device.

    Shape:
        frames ``(n_frames, dim)``.
    """
    gmm = DiagGMM(1, frames.shape[1]).to(frames.device)
    gmm.means.copy_(frames.mean(0, keepdim=True))
    global_var = frames.var(0, unbiased=False)
    gmm.variances.copy_(global_var.unsqueeze(0))
    var_floor = 1e-3 * global_var
    n_splits = math.ceil(math.log2(n_components)) if n_components > 1 else 0
    bar = tqdm(total=n_splits * iterations + final_iterations, desc="UBM EM", unit="it", disable=not progress)
    generator = torch.Generator().manual_seed(seed)
    while gmm.n_components < n_components:
        gmm.split(n_components, generator)
        for _ in range(iterations):
            gmm.em_step(frames, var_floor)
            bar.update()
    for _ in range(final_iterations):
        gmm.em_step(frames, var_floor)
        bar.update()
    bar.set_postfix(loglik=f"{gmm.log_likelihood(frames).item():.2f}")
    bar.close()
    return gmm
