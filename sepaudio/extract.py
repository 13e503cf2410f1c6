"""Target speaker extraction of recordings with a trained model: any length, in bounded memory.

The speaker vector is computed once from the enrollment; the mixture then streams through
:func:`sepaudio.inference.process_file` in overlapping chunks, so memory depends on the chunk length only.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from .cards import IVECTOR_FILE, resolve_model_path
from .errors import ModelFileError
from .fileio import check_out_dir, check_outputs, read_list
from .inference import check_chunking, process_file, resolve_device
from .models import TseNet
from .pretrained import load_model
from .models.tsenet import MIN_SECONDS, RELIABLE_SECONDS, SILENT_RMS  # noqa: F401  (re-exported)
from .speaker import IVectorExtractor, load_ivector_extractor

__all__ = ["load_extractor", "enrollment_embedding", "extract_file", "extract_list", "read_extract_list"]


def load_extractor(path: str | os.PathLike, ivector_model: str | os.PathLike | None = None, device: str = "cpu",
                   precision: str | None = None) -> tuple[TseNet, IVectorExtractor | None]:
    """Load a speaker extraction model and, for an i-vector conditioned one, its i-vector extractor; with a
    ``precision`` (``fp32`` | ``bf16``) the model infers through the fused fast path (``EncoderMaskerDecoder.fast``).

    Raises:
        ModelFileError: not an extraction model, an i-vector model without ``ivector_model``, or an i-vector
            extractor whose dimension or rate does not fit the model.
        ConfigError: a device this machine does not have.
    """
    device = resolve_device(device)
    model = load_model(path, expected=TseNet).to(device).eval().fast(precision)
    if model.conditioning != "ivector":
        return model, None
    if ivector_model is None and getattr(model, "ivector_extractor", None) is not None:  # the model folder's own
        return model, model.ivector_extractor.to(device)
    beside = resolve_model_path(path).parent / IVECTOR_FILE
    if ivector_model is None and beside.is_file():
        ivector_model = beside
    if ivector_model is None:
        raise ModelFileError(f"{path}: this model is conditioned on i-vectors; give the i-vector extractor it was "
                             f"trained with (--ivector-model, written by 'sepaudio ivector train'), or put it in "
                             f"the model's folder as {IVECTOR_FILE}.")
    extractor = load_ivector_extractor(ivector_model, device)
    wanted = model.model_args["ivector_dim"]
    if extractor.dim != wanted or extractor.sample_rate != model.sample_rate:
        raise ModelFileError(f"{ivector_model}: gives {extractor.dim}-dim i-vectors at {extractor.sample_rate} Hz, "
                             f"but {path} takes {wanted}-dim i-vectors at {model.sample_rate} Hz; give the "
                             f"extractor the model was trained with.")
    model.ivector_extractor = extractor  # model.extract(mixture, enrollment) works on the loaded model too
    return model, extractor


def enrollment_embedding(model: TseNet, enrollment: Any, ivectors: IVectorExtractor | None = None,
                         sample_rate: int | None = None) -> torch.Tensor:
    """The speaker vector of an enrollment (resampled to the model's rate with a note): the one code path of
    ``sepaudio extract`` and ``TseNet.extract`` (:meth:`~sepaudio.models.TseNet.speaker_vector`).

    Args:
        model: an extraction model.
        enrollment: a recording of the target alone: a path, a numpy array or tensor (``(time)`` or
            ``(channels, time)``), or a list of them (their vectors averaged).
        ivectors: the i-vector extractor of an i-vector model (``None``: ``model.ivector_extractor``).
        sample_rate: of an array or tensor (``None``: the model's).

    Returns:
        ``(1, speaker_dim)`` on the model's device.

    Raises:
        AudioError: an enrollment that is silent or shorter than ``MIN_SECONDS`` (one shorter than
            ``RELIABLE_SECONDS`` gives a warning: its speaker vector is unreliable).
        ModelFileError: an i-vector model without a fitting i-vector extractor.
    """
    return model.speaker_vector(enrollment, sample_rate, ivectors)


def extract_file(model: TseNet, mixture: str | os.PathLike, enrollment: str | os.PathLike,
                 out_path: str | os.PathLike, ivectors: IVectorExtractor | None = None, chunk_seconds: float = 8.0,
                 overlap_seconds: float = 1.0, progress: bool = True) -> Path:
    """Extract the enrolled speaker from one recording into ``out_path`` (at the model's rate).

    Args:
        model: a loaded extraction model (see :func:`load_extractor`).
        mixture: the recording (mixed down to mono; resampled chunk by chunk with a note when needed).
        enrollment: a recording of the target speaker alone.
        out_path: the output audio file (written atomically).
        ivectors: the i-vector extractor of an i-vector conditioned model.
        chunk_seconds, overlap_seconds: chunk length and cross-faded overlap; memory grows with the chunk only.
        progress: show a bar over the chunks.

    Raises:
        OutputError: ``out_path`` is the mixture or the enrollment (nothing is written).
    """
    check_outputs([out_path], [mixture, enrollment])
    embedding = enrollment_embedding(model, enrollment, ivectors)
    device = embedding.device

    def fn(chunk: torch.Tensor) -> torch.Tensor:
        return model.extract_embedded(chunk.to(device), embedding).cpu()

    return process_file(mixture, [out_path], fn, model.sample_rate, chunk_seconds, overlap_seconds,
                        progress=progress)[0]


def read_extract_list(list_path: str | os.PathLike, out_dir: str | os.PathLike) -> list[tuple[Path, Path, Path]]:
    """Read ``mixture enrollment [output]`` lines (relative paths start at the list's folder; an output is relative
    to ``out_dir`` and stays inside it; the default is ``out_dir/<mixture stem>_<enrollment stem>.wav``).

    Raises:
        DatasetError: missing list, malformed line, or a missing input file (naming the line).
        OutputError: an output outside ``out_dir``, one that is an input of the list, or two lines with one output.
    """
    rows = read_list(list_path, 2, 1, usage="mixture enrollment [output]")
    jobs = [(mix, enroll, Path(out_dir) / (extra[0] if extra else f"{mix.stem}_{enroll.stem}.wav"))
            for _, (mix, enroll), extra in rows]
    check_outputs([out for *_, out in jobs], [list_path, *(path for job in jobs for path in job[:2])], out_dir)
    return jobs


def extract_list(model_path: str | os.PathLike, list_path: str | os.PathLike, out_dir: str | os.PathLike,
                 ivector_model: str | os.PathLike | None = None, chunk_seconds: float = 8.0,
                 overlap_seconds: float = 1.0, device: str = "cpu", progress: bool = True,
                 precision: str | None = None) -> list[Path]:
    """Run :func:`extract_file` over every line of a list (see :func:`read_extract_list`), with a progress bar;
    ``precision`` as in :func:`load_extractor`.

    Returns:
        The written outputs, in list order.
    """
    check_out_dir(out_dir)
    model, ivectors = load_extractor(model_path, ivector_model, device, precision)
    check_chunking(chunk_seconds, overlap_seconds, model.sample_rate)
    jobs = read_extract_list(list_path, out_dir)
    return [extract_file(model, mix, enroll, out, ivectors, chunk_seconds, overlap_seconds, progress=False)
            for mix, enroll, out in tqdm(jobs, desc="extracting", unit="file", disable=not progress)]
