"""Peak memory of ``sepaudio extract`` (TseNet + i-vector) on a 1-minute and a 10-minute recording.

Each run is a fresh process whose peak resident set size (VmHWM) is reported, so the figures include
Python, torch, the model and the i-vector extractor. With chunked processing the 10-minute file should need about
what the 1-minute one needs; the last row extracts from the 1-minute file in one piece for comparison.

Usage: ``python benchmarks/bench_extract_memory.py [--size mini|paper] [--minutes 1 10]``
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_peak import RATE, memory_parser, run_cli, write_recording  # noqa: E402

from sepaudio import audio  # noqa: E402
from sepaudio.data import make_mini_speech_corpus  # noqa: E402
from sepaudio.models import TseNet  # noqa: E402
from sepaudio.speaker import train_ivector_extractor  # noqa: E402

# paper: TseNet's defaults (N=256, B=256, H=512, X=8, R=4, 400-dim i-vectors); mini: recipes/tse_mini's model
SIZES = {"paper": {}, "mini": dict(n_filters=128, filter_length=40, ivector_dim=10, speaker_dim=32,
                                   tcn=dict(channels=64, hidden=128, skip_channels=64, blocks=4, repeats=2))}


def run_extract(model: Path, ivectors: Path, mix: Path, enroll: Path, out: Path, chunk: float) -> tuple[float, float]:
    """Peak RSS in MiB and wall time in seconds of one ``sepaudio extract`` process."""
    return run_cli(["extract", "--model", str(model), "--ivector-model", str(ivectors), "--mixture", str(mix),
                    "--enroll", str(enroll), "-o", str(out), "--chunk-seconds", str(chunk), "--overlap-seconds", "1"])


def main() -> None:
    args = memory_parser(__doc__, SIZES).parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = TseNet(**SIZES[args.size])
        model.save(tmp / "model.pt")
        corpus = make_mini_speech_corpus(tmp / "corpus", n_speakers=4, utterances=4)
        wavs = [audio.load(p)[0][0] for paths in corpus.values() for p in paths]
        extractor = train_ivector_extractor(wavs, RATE, n_components=16, rank=model.model_args["ivector_dim"],
                                            tv_iterations=2, progress=False)
        extractor.save(tmp / "ivector.pt")
        enroll = corpus["spk00"][0]
        print(f"model: TseNet ({args.size}), {model.num_parameters:,} parameters, {RATE} Hz, "
              f"{extractor.dim}-dim i-vectors")
        rows = []
        for minutes in args.minutes:
            mix = tmp / f"mix_{minutes:g}min.wav"
            write_recording(mix, minutes)
            rss, seconds = run_extract(tmp / "model.pt", tmp / "ivector.pt", mix, enroll, tmp / "out.wav",
                                       args.chunk_seconds)
            rows.append((f"{minutes:g} min", f"{args.chunk_seconds:g} s", rss, seconds))
        shortest = min(args.minutes)
        rss, seconds = run_extract(tmp / "model.pt", tmp / "ivector.pt", tmp / f"mix_{shortest:g}min.wav", enroll,
                                   tmp / "out.wav", shortest * 60 + 1)
        rows.append((f"{shortest:g} min", "whole file", rss, seconds))
    print(f"{'input':>8} {'chunk':>11} {'peak RSS (MiB)':>15} {'wall (s)':>9}")
    for name, chunk, rss, seconds in rows:
        print(f"{name:>8} {chunk:>11} {rss:>15.0f} {seconds:>9.1f}")


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
