"""Chunked long-file processing: chunk layout, cross-fades, cross-chunk source alignment, streaming files."""
import math

import pytest
import torch

from sepaudio import audio
from sepaudio.inference import align_to, chunk_bounds, process_file, process_tensor

RATE = 8000


def two_sources(seconds: float = 3.0) -> torch.Tensor:
    """Two distinct signals: a chirp-like tone and a noise burst pattern. Shape: (2, time)."""
    gen = torch.Generator().manual_seed(0)
    t = torch.arange(int(seconds * RATE)) / RATE
    tone = 0.5 * torch.sin(2 * math.pi * (200 + 100 * t) * t)
    noise = 0.1 * torch.randn(t.shape[0], generator=gen) * (0.6 + 0.4 * torch.sin(2 * math.pi * 1.5 * t))
    return torch.stack([tone, noise])


class SwappingOracle:
    """A fake separator that returns the true sources of each chunk, in the opposite order on every other call."""

    def __init__(self, sources: torch.Tensor, bounds):
        self.sources, self.bounds, self.calls = sources, bounds, 0

    def __call__(self, chunk: torch.Tensor) -> torch.Tensor:
        start, end = self.bounds[self.calls]
        assert chunk.shape == (1, end - start)
        out = self.sources[:, start:end]
        if self.calls % 2:
            out = out.flip(0) * torch.tensor([[0.7], [1.3]])  # swapped and rescaled
        self.calls += 1
        return out.unsqueeze(0)


@pytest.mark.parametrize("length,chunk,overlap", [(100, 100, 10), (101, 40, 10), (1000, 300, 150), (97, 20, 0),
                                                  (250, 100, 30)])
def test_chunk_bounds_cover_the_signal(length, chunk, overlap):
    bounds = chunk_bounds(length, chunk, overlap)
    assert bounds[0][0] == 0 and bounds[-1][1] == length
    for (s0, e0), (s1, e1) in zip(bounds, bounds[1:]):
        assert e1 - s1 <= chunk and e0 - s0 == chunk
        assert s0 < s1 < e0 or overlap == 0 and s1 == e0
        assert e0 - s1 >= overlap  # every border overlaps by at least the overlap
    for (s0, e0), (s1, _), (s2, _) in zip(bounds, bounds[1:], bounds[2:]):
        assert s2 >= e0  # overlaps never overlap each other
    if len(bounds) > 2:  # the last chunk is full length unless that would reach into the previous overlap
        (s0, e0), (s1, e1), (s2, e2) = bounds[-3:]
        assert e2 - s2 == chunk or s2 == e0


def test_chunk_bounds_reject_overlap_over_half():
    with pytest.raises(ValueError, match="overlap"):
        chunk_bounds(1000, 100, 60)


def test_identity_is_rebuilt_exactly():
    wav = torch.randn(RATE * 3 + 17)
    out = process_tensor(wav, lambda x: x.unsqueeze(1), RATE, chunk_seconds=0.5, overlap_seconds=0.1)
    assert out.shape == (1, wav.shape[0])
    torch.testing.assert_close(out[0], wav, atol=1e-6, rtol=0)


def test_cross_fade_blends_chunks():
    """A model that outputs a constant per chunk: inside overlaps the output moves between the two constants."""
    wav = torch.zeros(RATE)
    calls = []

    def fn(chunk):
        calls.append(len(calls))
        return torch.full((1, 1, chunk.shape[-1]), float(len(calls)))

    out = process_tensor(wav, fn, RATE, chunk_seconds=0.25, overlap_seconds=0.05)[0]
    assert len(calls) == 5
    assert out[0] == 1 and out[-1] == len(calls)
    assert torch.all(out[1:] >= out[:-1])  # monotone ramps, no jumps back
    assert torch.all(torch.diff(out) < 0.1)  # ramps are smooth (a ramp of 400 samples between levels 1 apart)


def test_align_to_recovers_permutation_of_five():
    ref = torch.randn(5, 400)
    perm = torch.tensor([3, 0, 4, 1, 2])
    shuffled = torch.empty_like(ref)
    shuffled[perm] = ref * torch.tensor([0.5, 2.0, 1.0, 0.8, 1.5])[:, None]
    assert torch.equal(shuffled[align_to(ref, shuffled)].sign(), ref.sign())
    assert torch.equal(align_to(ref, shuffled), perm)


def test_cross_chunk_permutation_is_kept():
    """Speakers must not jump from one output to the other at chunk borders."""
    sources = two_sources()
    wav = sources.sum(0)
    chunk, overlap = 0.5, 0.125
    bounds = chunk_bounds(wav.shape[0], int(chunk * RATE), int(overlap * RATE))
    assert len(bounds) > 4

    swapped = process_tensor(wav, SwappingOracle(sources, bounds), RATE, chunk, overlap, align_sources=False)
    aligned = process_tensor(wav, SwappingOracle(sources, bounds), RATE, chunk, overlap, align_sources=True)

    # without alignment, the second chunk's region of output 0 holds source 1
    s1, e0 = bounds[1][0], bounds[0][1]
    region = slice(e0, bounds[2][0])
    assert torch.allclose(swapped[0, region], 0.7 * sources[1, region])
    # with alignment, each output follows one source everywhere (up to the per-chunk gains the oracle applied)
    for k, (start, end) in enumerate(bounds):
        inner = slice(start + 1000, end - 1000)
        for src in range(2):
            corr = torch.nn.functional.cosine_similarity(aligned[src, inner], sources[src, inner], dim=0)
            assert corr > 0.99, (k, src, corr)
    assert s1 < e0


def test_process_file_matches_process_tensor(tmp_path):
    sources = two_sources(4.0)
    wav = sources.sum(0)
    audio.save(tmp_path / "mix.wav", wav, RATE)
    bounds = chunk_bounds(wav.shape[0], int(0.5 * RATE), int(0.1 * RATE))
    outs = [tmp_path / "out" / "a.wav", tmp_path / "out" / "b.flac"]  # sources stay within [-1, 1]
    process_file(tmp_path / "mix.wav", outs, SwappingOracle(sources, bounds), RATE, 0.5, 0.1, align_sources=True,
                 progress=False)
    expected = process_tensor(wav, SwappingOracle(sources, bounds), RATE, 0.5, 0.1, align_sources=True)
    for path, ref in zip(outs, expected):
        got, rate = audio.load(path)
        assert rate == RATE and got.shape == (1, wav.shape[0])
        torch.testing.assert_close(got[0], ref, atol=1e-4, rtol=0)  # flac is 16-bit
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.wav", "b.flac"]  # no temporary files left


def test_process_file_resamples_chunk_by_chunk(tmp_path, capsys):
    t = torch.arange(16000 * 3) / 16000
    wav = 0.5 * torch.sin(2 * math.pi * 440 * t) + 0.2 * torch.sin(2 * math.pi * 1234 * t)
    audio.save(tmp_path / "mix16k.wav", wav, 16000)
    out = tmp_path / "id.wav"
    process_file(tmp_path / "mix16k.wav", [out], lambda x: x.unsqueeze(1), RATE, 0.4, 0.1, progress=False)
    assert "resampling" in capsys.readouterr().err
    got, rate = audio.load(out)
    whole, _ = audio.load(tmp_path / "mix16k.wav", sample_rate=RATE)
    assert rate == RATE and got.shape == whole.shape
    torch.testing.assert_close(got, whole, atol=1e-4, rtol=0)


def test_process_file_failure_leaves_no_output(tmp_path):
    audio.save(tmp_path / "mix.wav", torch.randn(RATE * 2), RATE)
    calls = []

    def failing(chunk):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("out of memory")
        return chunk.unsqueeze(1)

    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="out of memory"):
        process_file(tmp_path / "mix.wav", [out / "s1.wav"], failing, RATE, 0.5, 0.1, progress=False)
    assert list(out.iterdir()) == []


def test_process_file_checks_output_count(tmp_path):
    audio.save(tmp_path / "mix.wav", torch.randn(RATE), RATE)
    with pytest.raises(ValueError, match="2 outputs"):
        process_file(tmp_path / "mix.wav", [tmp_path / "a.wav"], lambda x: torch.stack([x, x], 1), RATE, 0.5, 0.1,
                     progress=False)
