"""Encoder / decoder pairs from asteroid-filterbanks (learned ``free``, ``analytic_free``, ``param_sinc``, ``stft``).

Both sides pad ``filter_length // 2`` on each end (torchaudio's Conv-TasNet convention).
"""
from __future__ import annotations

from asteroid_filterbanks import Decoder, Encoder, make_enc_dec

FILTERBANKS = ("free", "analytic_free", "param_sinc", "stft")


def make_filterbank(
    name: str = "free",
    n_filters: int = 512,
    filter_length: int = 16,
    stride: int | None = None,
    sample_rate: int = 8000,
) -> tuple[Encoder, Decoder]:
    """Build an encoder and its decoder.

    Args:
        name: one of ``free``, ``analytic_free``, ``param_sinc``, ``stft``.
        n_filters: N, filters of the bank (``stft`` adds two: ``n_filters // 2 + 1`` complex bins).
        filter_length: L, in samples (``param_sinc`` rounds it up to odd).
        stride: hop in samples; default ``filter_length // 2``.
        sample_rate: used by ``param_sinc``.

    Shape:
        encoder ``(batch, 1, time)`` -> ``(batch, encoder.filterbank.n_feats_out, frames)`` (asteroid warns about a
        ``(batch, time)`` input);
        decoder ``(batch, [n_src,] n_feats_out, frames)`` -> ``(batch, [n_src,] time)``.
    """
    if name not in FILTERBANKS:
        raise ValueError(f"unknown filterbank {name!r}; choose one of {FILTERBANKS}")
    stride = stride or filter_length // 2
    encoder, decoder = make_enc_dec(name, n_filters=n_filters, kernel_size=filter_length, stride=stride,
                                    sample_rate=sample_rate, padding=filter_length // 2)
    return encoder, decoder
