"""i-vector extractor: Baum-Welch statistics on a GMM-UBM, total variability matrix trained by EM, posterior-mean
i-vectors, centering, optional LDA, length normalisation; one-file save / load.

Statistics are whitened by the UBM (first-order statistics centred on the component means and divided by the
component standard deviations), so the model is ``F_c = N_c T_c w`` with identity noise covariance.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import torch
from torch import nn
from tqdm import tqdm

from ..errors import ConfigError, ModelFileError
from ..models.loading import unreadable_reason
from ..fileio import atomic_path
from .features import FeatureConfig, speaker_features
from .gmm import CHUNK, DiagGMM, train_ubm

FORMAT = "sepaudio-ivector-extractor"
FORMAT_VERSION = 1


class IVectorExtractor(nn.Module):
    """Waveforms -> i-vectors. Everything it holds is a buffer, so ``.to(device)`` moves all of it.

    Args:
        sample_rate: of the waveforms it takes (others are resampled by the caller).
        n_components: C, Gaussians of the UBM.
        rank: R, dimension of the total variability subspace (of the raw i-vector).
        lda_dim: output dimension of the LDA trained on speaker labels; 0 for no LDA.
        features: :class:`FeatureConfig` fields.

    Shape:
        waveforms: a list of ``(time)`` tensors -> ``(n_utterances, dim)`` with ``dim = lda_dim or rank``.
    """

    def __init__(self, sample_rate: int = 8000, n_components: int = 512, rank: int = 400, lda_dim: int = 0,
                 features: dict | None = None):
        super().__init__()
        self.sample_rate = sample_rate
        self.rank = rank
        self.lda_dim = lda_dim
        self.features = FeatureConfig(**(features or {}))
        self.ubm = DiagGMM(n_components, self.features.dim)
        self.register_buffer("T", torch.zeros(n_components * self.features.dim, rank))
        self.register_buffer("center", torch.zeros(rank))
        self.register_buffer("lda", torch.eye(rank)[:, :lda_dim])

    @property
    def dim(self) -> int:
        """Size of the vectors :meth:`extract` returns."""
        return self.lda_dim or self.rank

    @property
    def device(self) -> torch.device:
        return self.T.device

    # ---------------------------------------------------------------- statistics and posteriors
    def feature_list(self, wavs: Iterable[torch.Tensor], progress: bool = False, desc: str = "features") -> list:
        """Features of each waveform, on the extractor's device; ``wavs`` may be a generator (files loaded one at a
        time). Shape: ``(time)`` each -> ``(frames, D)`` each."""
        total = len(wavs) if hasattr(wavs, "__len__") else None
        return [speaker_features(w.to(self.device), self.sample_rate, self.features)
                for w in tqdm(wavs, desc=desc, unit="utt", total=total, disable=not progress)]

    @torch.no_grad()
    def statistics(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Zeroth- and whitened, centred first-order Baum-Welch statistics of each utterance.

        Returns:
            ``(N, F)``: ``N (utterances, C)``, ``F (utterances, C * D)``.
        """
        C, D = self.ubm.n_components, self.ubm.dim
        occ = torch.zeros(len(feats), C, device=self.device)
        first = torch.zeros(len(feats), C, D, device=self.device)
        for u, x in enumerate(feats):
            for chunk in x.split(CHUNK):
                post = self.ubm.posteriors(chunk)
                occ[u] += post.sum(0)
                first[u] += post.T @ chunk
        first = (first - occ.unsqueeze(2) * self.ubm.means) / self.ubm.variances.sqrt()
        return occ, first.reshape(len(feats), C * D)

    def _posterior(self, occ: torch.Tensor, first: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and covariance of the latent factor.

        Shape: ``(U, C)``, ``(U, C*D)`` -> mean ``(U, R)``, covariance ``(U, R, R)``.
        """
        C, R = self.ubm.n_components, self.rank
        T = self.T.view(C, -1, R)
        tt = torch.einsum("cdr,cds->crs", T, T).reshape(C, R * R)
        precision = torch.eye(R, device=self.device) + (occ @ tt).view(-1, R, R)
        cov = torch.linalg.inv(precision)
        cov = 0.5 * (cov + cov.transpose(1, 2))
        mean = (cov @ (first @ self.T).unsqueeze(2)).squeeze(2)
        return mean, cov

    @torch.no_grad()
    def raw_ivectors(self, occ: torch.Tensor, first: torch.Tensor, batch: int = 256) -> torch.Tensor:
        """Posterior means before centering / LDA / length norm. Shape: ``(U, C)``, ``(U, C*D)`` -> ``(U, R)``."""
        return torch.cat([self._posterior(o, f)[0] for o, f in zip(occ.split(batch), first.split(batch))])

    def postprocess(self, ivectors: torch.Tensor) -> torch.Tensor:
        """Centre, length-normalise and project by LDA (if trained), scale to length ``sqrt(dim)``.

        Shape: ``(U, R)`` -> ``(U, dim)``.
        """
        x = ivectors - self.center
        if self.lda_dim:
            x = unit_length(x) @ self.lda
        return unit_length(x) * x.shape[1] ** 0.5

    @torch.no_grad()
    def extract(self, wavs: Sequence[torch.Tensor], progress: bool = False) -> torch.Tensor:
        """i-vectors of waveforms at ``self.sample_rate``.

        Args:
            wavs: mono waveforms, each ``(time)`` (a ``(batch, time)`` tensor is a batch of waveforms).
            progress: show a progress bar over the feature extraction.

        Returns:
            ``(len(wavs), dim)`` on the extractor's device.
        """
        feats = self.feature_list(list(wavs), progress)
        return self.postprocess(self.raw_ivectors(*self.statistics(feats)))

    # ---------------------------------------------------------------- training
    @torch.no_grad()
    def train_total_variability(self, occ: torch.Tensor, first: torch.Tensor, iterations: int = 10,
                                batch: int = 256, progress: bool = True, seed: int = 0) -> None:
        """EM for the total variability matrix T on Baum-Welch statistics (the UBM must be trained).

        E-step: posterior of every utterance's latent factor; M-step: ``T_c = (sum_u F_uc E[w_u]^T)
        (sum_u N_uc E[w_u w_u^T])^-1``; then a minimum-divergence step that makes the factors' prior standard.

        Shape: occ ``(U, C)``, first ``(U, C*D)``.
        """
        C, R = self.ubm.n_components, self.rank
        gen = torch.Generator().manual_seed(seed)
        self.T.copy_(0.1 * torch.randn(self.T.shape, generator=gen).to(self.device))
        for _ in tqdm(range(iterations), desc="T-matrix EM", unit="it", disable=not progress):
            acc_a = torch.zeros(C, R * R, device=self.device)
            acc_c = torch.zeros_like(self.T)
            acc_mean = torch.zeros(R, device=self.device)
            acc_second = torch.zeros(R, R, device=self.device)
            for o, f in zip(occ.split(batch), first.split(batch)):
                mean, cov = self._posterior(o, f)
                second = cov + mean.unsqueeze(2) * mean.unsqueeze(1)
                acc_a += o.T @ second.reshape(-1, R * R)
                acc_c += f.T @ mean
                acc_mean += mean.sum(0)
                acc_second += second.sum(0)
            a = acc_a.view(C, R, R)
            a = a + 1e-6 * torch.eye(R, device=self.device)
            new = torch.linalg.solve(a, acc_c.view(C, -1, R).transpose(1, 2)).transpose(1, 2)
            # Minimum divergence: whiten the empirical prior of the factors into T.
            n = occ.shape[0]
            mu = acc_mean / n
            cov_w = acc_second / n - torch.outer(mu, mu)
            chol = torch.linalg.cholesky(cov_w + 1e-6 * torch.eye(R, device=self.device))
            self.T.copy_((new.reshape(-1, R)) @ chol)

    @torch.no_grad()
    def train_lda(self, ivectors: torch.Tensor, speakers: Sequence) -> None:
        """Fit the LDA projection on centred raw i-vectors with speaker labels (keeps ``lda_dim`` directions).

        Shape: ivectors ``(U, R)``, speakers ``U`` labels.
        """
        labels = {s: i for i, s in enumerate(sorted(set(speakers), key=str))}
        y = torch.tensor([labels[s] for s in speakers], device=ivectors.device)
        x = unit_length(ivectors - self.center)
        R = x.shape[1]
        class_means = torch.zeros(len(labels), R, device=x.device).index_add_(0, y, x)
        counts = torch.bincount(y, minlength=len(labels)).float().unsqueeze(1)
        class_means /= counts
        within = x - class_means[y]
        s_w = within.T @ within / x.shape[0] + 1e-4 * torch.eye(R, device=x.device)
        grand = x.mean(0)
        diff = class_means - grand
        s_b = (diff * counts).T @ diff / x.shape[0]
        # Whiten the within-class scatter, then take the leading directions of the between-class scatter.
        evals, evecs = torch.linalg.eigh(s_w)
        whiten = evecs / evals.clamp_min(1e-10).sqrt()
        b_evals, b_evecs = torch.linalg.eigh(whiten.T @ s_b @ whiten)
        order = torch.argsort(b_evals, descending=True)[: self.lda_dim]
        self.lda.copy_(whiten @ b_evecs[:, order])

    # ---------------------------------------------------------------- files
    def save(self, path: str | os.PathLike) -> Path:
        """Write the extractor (configuration and every buffer) atomically to one file."""
        record = {"format": FORMAT, "version": FORMAT_VERSION,
                  "config": {"sample_rate": self.sample_rate, "n_components": self.ubm.n_components,
                             "rank": self.rank, "lda_dim": self.lda_dim, "features": self.features.to_dict()},
                  "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()}}
        with atomic_path(path) as tmp:
            torch.save(record, tmp)
        return Path(path)


def unit_length(x: torch.Tensor) -> torch.Tensor:
    """Scale every row to length one. Shape: ``(n, dim)`` -> ``(n, dim)``."""
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-8)


def load_ivector_extractor(path: str | os.PathLike, device: str | torch.device = "cpu") -> IVectorExtractor:
    """Read an extractor written by :meth:`IVectorExtractor.save` (``sepaudio ivector train``).

    Raises:
        ModelFileError: the file is missing, unreadable or not an i-vector extractor.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such i-vector extractor; train one with 'sepaudio ivector train'.")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for truncated / foreign files
        raise ModelFileError(f"{path}: not a readable i-vector extractor file: {unreadable_reason(err)}") from err
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not an i-vector extractor (written by 'sepaudio ivector train' expected).")
    try:
        extractor = IVectorExtractor(**record["config"])
        extractor.load_state_dict(record["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise ModelFileError(f"{path}: an i-vector extractor record with wrong or missing fields ({err}); write it "
                             f"again with 'sepaudio ivector train'.") from err
    return extractor.to(device).eval()


def train_ivector_extractor(
    wavs: Iterable[torch.Tensor],
    sample_rate: int,
    speakers: Sequence | None = None,
    n_components: int = 512,
    rank: int = 400,
    lda_dim: int = 0,
    ubm_iterations: int = 4,
    ubm_final_iterations: int = 10,
    tv_iterations: int = 10,
    max_ubm_frames: int = 500_000,
    features: dict | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: bool = True,
) -> IVectorExtractor:
    """Train UBM, total variability matrix, centering and (with speaker labels and ``lda_dim``) LDA.

    Args:
        wavs: training utterances at ``sample_rate``, each ``(time)`` (a generator keeps one in memory at a time).
        sample_rate: their rate.
        speakers: one label per utterance; needed for LDA.
        n_components: see :class:`IVectorExtractor`.
        rank: see :class:`IVectorExtractor`.
        lda_dim: see :class:`IVectorExtractor`.
        features: see :class:`IVectorExtractor`.
        ubm_iterations: EM iterations per split (see :func:`train_ubm`).
        ubm_final_iterations: EM iterations at the end (see :func:`train_ubm`).
        tv_iterations: EM iterations of the total variability matrix.
        max_ubm_frames: the UBM is trained on at most this many randomly chosen frames.
        device: where to train (``cuda`` when available makes it fast).
        seed: random seed (frame subset, T initialisation).
        progress: show progress bars.
    """
    if lda_dim and speakers is None:
        raise ConfigError("LDA (--lda-dim) needs speaker labels: pass speakers, or lda_dim=0")
    if lda_dim and len(set(speakers)) <= lda_dim:
        raise ConfigError(f"--lda-dim {lda_dim}: LDA to {lda_dim} dimensions needs more than {lda_dim} speakers; "
                          f"got {len(set(speakers))}: lower lda_dim")
    extractor = IVectorExtractor(sample_rate, n_components, rank, lda_dim, features).to(device)
    feats = extractor.feature_list(wavs, progress, desc="MFCC + VAD")
    pooled = torch.cat(feats)
    gen = torch.Generator().manual_seed(seed)
    if pooled.shape[0] > max_ubm_frames:
        pooled = pooled[torch.randperm(pooled.shape[0], generator=gen)[:max_ubm_frames].to(pooled.device)]
    ubm = train_ubm(pooled, n_components, ubm_iterations, ubm_final_iterations, progress, seed)
    extractor.ubm.load_state_dict(ubm.state_dict())
    occ, first = extractor.statistics(feats)
    extractor.train_total_variability(occ, first, tv_iterations, progress=progress, seed=seed)
    raw = extractor.raw_ivectors(occ, first)
    extractor.center.copy_(raw.mean(0))
    if lda_dim:
        extractor.train_lda(raw, speakers)
    return extractor.eval()
