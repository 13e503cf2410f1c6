"""The ``sepaudio ivector`` commands' library side: wav lists in, extractor / i-vectors / EER out."""
from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from .. import audio
from ..errors import DatasetError
from ..fileio import atomic_path, check_out_dir, check_outputs, read_list, write_text
from .ivector import IVectorExtractor, load_ivector_extractor, train_ivector_extractor
from .scoring import cosine_trials, equal_error_rate


def read_wav_list(list_path: str | os.PathLike) -> tuple[list[Path], list[str] | None]:
    """Read ``path [speaker]`` lines (``#`` comments; relative paths start at the list's folder).

    Returns:
        ``(paths, speakers)``; ``speakers`` is ``None`` unless every line names one.

    Raises:
        DatasetError: missing or empty list, a line with more than two fields, or a listed file that is missing.
    """
    rows = read_list(list_path, 1, 1, usage="path [speaker]")
    speakers = [extra[0] if extra else None for _, _, extra in rows]
    return [paths[0] for _, paths, _ in rows], (speakers if None not in speakers else None)


class LazyWavs:
    """Mono waveforms at ``sample_rate``, read from their files one at a time as they are iterated.

    Shape: each ``(time)``.
    """

    def __init__(self, paths: list[Path], sample_rate: int):
        self.paths, self.sample_rate = paths, sample_rate

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self):
        return (audio.load(p, sample_rate=self.sample_rate, mono=True)[0][0] for p in self.paths)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def train_from_list(list_path: str | os.PathLike, out: str | os.PathLike, sample_rate: int = 8000,
                    max_utterances: int | None = None, **kwargs) -> IVectorExtractor:
    """Train an i-vector extractor on the files of a wav list and save it to ``out``.

    Args:
        list_path: ``path [speaker]`` lines (see :func:`read_wav_list`); LDA needs a speaker on every line.
        out: the extractor file.
        sample_rate: audio is resampled to it.
        max_utterances: train on at most this many utterances, drawn at random (large corpora).
        kwargs: go to :func:`~sepaudio.speaker.ivector.train_ivector_extractor`.
    """
    paths, speakers = read_wav_list(list_path)
    check_outputs([out], [list_path, *paths])
    if max_utterances and len(paths) > max_utterances:
        keep = sorted(random.Random(kwargs.get("seed", 0)).sample(range(len(paths)), max_utterances))
        paths = [paths[i] for i in keep]
        speakers = [speakers[i] for i in keep] if speakers is not None else None
    if kwargs.get("lda_dim") and speakers is None:
        raise DatasetError(f"{list_path}: LDA needs a speaker on every line ('path speaker'); add them or set "
                           f"--lda-dim 0.")
    kwargs.setdefault("device", default_device())
    others = max(torch.cuda.device_count() - 1, 0) if str(kwargs["device"]).startswith("cuda") else 0
    print(f"i-vector training runs on one device ({kwargs['device']})"
          + (f"; {others} other GPU(s) stay idle" if others else ""), file=sys.stderr)
    extractor = train_ivector_extractor(LazyWavs(paths, sample_rate), sample_rate, speakers, **kwargs)
    extractor.save(out)
    return extractor


def extract_from_list(model: str | os.PathLike, list_path: str | os.PathLike, out_dir: str | os.PathLike,
                      batch: int = 64, device: str | None = None) -> dict:
    """i-vectors of every file of a wav list, written to ``out_dir/ivectors.pt``; EER when speakers are listed.

    ``ivectors.pt`` holds ``{"paths": [str], "speakers": [str] | None, "ivectors": (n, dim) tensor}``;
    ``summary.json`` the count, the dimension and (with two or more speakers) the EER of cosine scoring over all
    pairs of utterances.

    Returns:
        The summary dict.
    """
    extractor = load_ivector_extractor(model, device or default_device())
    paths, speakers = read_wav_list(list_path)
    out_dir = check_out_dir(out_dir, "--out")
    check_outputs([out_dir / "ivectors.pt", out_dir / "summary.json"], [model, list_path, *paths])
    vectors = []
    for start in tqdm(range(0, len(paths), batch), desc="i-vectors", unit="batch"):
        wavs = list(LazyWavs(paths[start:start + batch], extractor.sample_rate))
        vectors.append(extractor.extract(wavs).cpu())
    vectors = torch.cat(vectors)
    with atomic_path(out_dir / "ivectors.pt") as tmp:
        torch.save({"paths": [str(p) for p in paths], "speakers": speakers, "ivectors": vectors}, tmp)
    summary = {"utterances": len(paths), "dim": vectors.shape[1]}
    if speakers is not None and len(set(speakers)) > 1:
        summary["speakers"] = len(set(speakers))
        summary["eer"] = equal_error_rate(*cosine_trials(vectors, speakers))
    write_text(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary
