"""Target speaker extraction of recordings with a trained model: any length, in bounded memory.

The speaker vector is computed once from the enrollment (a file, a range ``FILE@START-END`` of any file, or several
of them, averaged); the mixture then streams through :func:`sepaudio.inference.process_file` in overlapping chunks,
so memory depends on the chunk length only. The model is a TseNet, or a blind separator whose output nearest the
enrollment is chosen (``select="ivector"``). Every extraction is scored with a confidence
(:mod:`sepaudio.speaker.confidence`): a low one says the extractor may have returned another talker.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from .cards import IVECTOR_FILE, resolve_model_path
from .errors import AudioError, ConfigError, DatasetError, ModelFileError
from .fileio import check_out_dir, check_outputs, read_list, write_text
from .inference import check_chunking, process_file, resolve_device
from .models import TseNet
from .pretrained import load_model
from .models.tsenet import DEFAULT_CONFIDENCE_THRESHOLD, MIN_SECONDS, RELIABLE_SECONDS, SILENT_RMS  # noqa: F401
from .speaker import IVectorExtractor, load_ivector_extractor
from .speaker.confidence import ConfidenceMeter, SpeakerVectors, waveform_confidence
from .speaker.enrollment import EnrollmentSpec, load_enrollment, parse_enrollment
from .speaker.select import SelectExtractor, check_selection

__all__ = ["load_extractor", "enrollment_embedding", "extract_file", "extract_list", "read_extract_list",
           "extraction_confidence", "write_report", "confidence_warning", "confidence_threshold",
           "DEFAULT_MIN_CONFIDENCE"]

#: the warning threshold of a model that has no calibrated one (a separate-then-select extractor, an old file)
DEFAULT_MIN_CONFIDENCE = DEFAULT_CONFIDENCE_THRESHOLD


def confidence_threshold(model: Any, min_confidence: float | None = None) -> float:
    """The threshold below which an extraction is warned of: ``min_confidence`` when given, else the model's
    calibrated ``confidence_threshold`` (``sepaudio evaluate --calibrate``), else :data:`DEFAULT_MIN_CONFIDENCE`."""
    if min_confidence is not None:
        return float(min_confidence)
    return float(getattr(model, "confidence_threshold", DEFAULT_MIN_CONFIDENCE))


def load_extractor(path: str | os.PathLike, ivector_model: str | os.PathLike | None = None, device: str = "cpu",
                   precision: str | None = None, select: str | None = None
                   ) -> tuple[TseNet | SelectExtractor, IVectorExtractor | None]:
    """Load a speaker extraction model and, for an i-vector conditioned one, its i-vector extractor; with a
    ``precision`` (``fp32`` | ``bf16``) the model infers through the fused fast path (``EncoderMaskerDecoder.fast``).
    With ``select="ivector"``, ``path`` is a blind separator, made an extractor by
    :class:`~sepaudio.speaker.select.SelectExtractor` with the i-vector extractor ``ivector_model`` (default: the
    one in the model's folder).

    Raises:
        ModelFileError: not an extraction model (a blind separator with ``select``), an i-vector model without
            ``ivector_model``, or an i-vector extractor whose dimension or rate does not fit the model.
        ConfigError: a device this machine does not have, or an unknown ``select``.
    """
    if select is not None:
        return _load_selector(path, ivector_model, device, precision, select)
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


def _load_selector(path, ivector_model, device, precision, select):
    """A blind separator with selection by i-vector (see :func:`load_extractor`)."""
    from .separate import load_separator

    check_selection(select)
    separator = load_separator(path, device, precision)
    beside = resolve_model_path(path).parent / IVECTOR_FILE
    ivector_model = ivector_model or (beside if beside.is_file() else None)
    if ivector_model is None:
        raise ModelFileError(f"{path}: --select ivector picks the output by i-vector; give an i-vector extractor "
                             f"at the model's rate (--ivector-model, written by 'sepaudio ivector train').")
    extractor = load_ivector_extractor(ivector_model, resolve_device(device))
    if extractor.sample_rate != separator.sample_rate:
        raise ModelFileError(f"{ivector_model}: takes {extractor.sample_rate} Hz audio but {path} "
                             f"{separator.sample_rate} Hz; give an extractor trained at the model's rate.")
    return SelectExtractor(separator, extractor), extractor


def enrollment_embedding(model: TseNet, enrollment: Any, ivectors: IVectorExtractor | None = None,
                         sample_rate: int | None = None, names: list[str] | None = None) -> torch.Tensor:
    """The speaker vector of an enrollment (resampled to the model's rate with a note): the one code path of
    ``sepaudio extract`` and ``TseNet.extract`` (:meth:`~sepaudio.models.TseNet.speaker_vector`).

    Args:
        model: an extraction model.
        enrollment: a recording of the target alone: a path, a numpy array or tensor (``(time)`` or
            ``(channels, time)``), or a list of them (their vectors averaged).
        ivectors: the i-vector extractor of an i-vector model (``None``: ``model.ivector_extractor``).
        sample_rate: of an array or tensor (``None``: the model's).
        names: how warnings and errors name the enrollments (default: their paths, or "enrollment").

    Returns:
        ``(1, speaker_dim)`` on the model's device.

    Raises:
        AudioError: an enrollment that is silent or shorter than ``MIN_SECONDS`` (one shorter than
            ``RELIABLE_SECONDS`` gives a warning: its speaker vector is unreliable).
        ModelFileError: an i-vector model without a fitting i-vector extractor.
    """
    return model.speaker_vector(enrollment, sample_rate, ivectors, names=names)


def extract_file(model: TseNet | SelectExtractor, mixture: str | os.PathLike, enrollment: Any,
                 out_path: str | os.PathLike, ivectors: IVectorExtractor | None = None, chunk_seconds: float = 8.0,
                 overlap_seconds: float = 1.0, progress: bool = True, scores: dict | None = None) -> Path:
    """Extract the enrolled speaker from one recording into ``out_path`` (at the model's rate).

    Args:
        model: a loaded extraction model (see :func:`load_extractor`).
        mixture: the recording (mixed down to mono; resampled chunk by chunk with a note when needed).
        enrollment: a recording of the target speaker alone: a path, ``FILE@START-END`` (seconds), an
            :class:`~sepaudio.speaker.enrollment.EnrollmentSpec`, or a list of them (speaker vectors averaged).
        out_path: the output audio file (written atomically).
        ivectors: the i-vector extractor of an i-vector conditioned model.
        chunk_seconds, overlap_seconds: chunk length and cross-faded overlap; memory grows with the chunk only.
        progress: show a bar over the chunks.
        scores: when given, receives ``confidence`` (see :mod:`sepaudio.speaker.confidence`; the length-weighted
            mean over the chunks).

    Raises:
        AudioError: a bad enrollment or range (see :func:`~sepaudio.speaker.enrollment.load_enrollment`).
        OutputError: ``out_path`` is the mixture or an enrollment file (nothing is written).
    """
    specs = [e if isinstance(e, EnrollmentSpec) else parse_enrollment(e)
             for e in (enrollment if _several(enrollment) else [enrollment])]
    check_outputs([out_path], [mixture, *(spec.path for spec in specs)])
    wavs = [load_enrollment(spec, model.sample_rate) for spec in specs]
    embedding = enrollment_embedding(model, wavs, ivectors, model.sample_rate, [str(spec) for spec in specs])
    device = embedding.device
    vectors = _vectors(model, ivectors)
    meter = ConfidenceMeter(vectors, vectors.mean(wavs), model.sample_rate)
    if scores is not None:
        scores["confidence"] = float("nan")

    def scored(chunk: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
        meter.add(chunk, estimate)
        if scores is not None:
            scores["confidence"] = meter.value
        return estimate

    def fn(chunk: torch.Tensor) -> torch.Tensor:
        return scored(chunk, model.extract_embedded(chunk.to(device), embedding).cpu())

    return process_file(mixture, [out_path], fn, model.sample_rate, chunk_seconds, overlap_seconds,
                        progress=progress)[0]


def _several(enrollment: Any) -> bool:
    """Whether ``enrollment`` is a list of enrollments (an :class:`EnrollmentSpec` is one)."""
    return isinstance(enrollment, (list, tuple)) and not isinstance(enrollment, EnrollmentSpec)


def _vectors(model: Any, ivectors: IVectorExtractor | None) -> SpeakerVectors:
    """The speaker vectors the confidence of ``model``'s extractions compares (i-vectors, or its own encoder)."""
    return SpeakerVectors(ivectors if ivectors is not None else getattr(model, "ivector_extractor", None), model)


def extraction_confidence(model: Any, mixture: Any, estimate: Any, enrollment: Any, sample_rate: int | None = None,
                          enrollment_rate: int | None = None, ivector_extractor: IVectorExtractor | None = None
                          ) -> float:
    """The confidence of an extraction done in Python (``tse.extract(mixture, enrollment)``), as ``sepaudio
    extract`` reports it (:func:`sepaudio.speaker.confidence.confidence`, in (0, 1): the speaker vectors of the
    estimate, of what it left out of the mixture and of the enrollment, i-vectors for an i-vector model, else the
    model's speaker encoder, and how far the estimate is from the mixture); a low one says it may have returned
    another talker, or not separated the voices at all.

    Args:
        model: the TseNet (or :class:`~sepaudio.speaker.select.SelectExtractor`) that extracted.
        mixture, estimate: a path, numpy array or tensor ``(time)`` each, at ``sample_rate``.
        enrollment: as ``extract`` takes it (a list: vectors averaged), at ``enrollment_rate``.
        ivector_extractor: for an i-vector model (default: ``model.ivector_extractor``).
    """
    from .arrays import to_model

    mix = to_model(mixture, model.sample_rate, sample_rate, "mixture")[0].reshape(1, -1)
    est = to_model(estimate, model.sample_rate, sample_rate, "estimate")[0].reshape(1, -1)
    items = enrollment if isinstance(enrollment, (list, tuple)) else [enrollment]
    vectors = _vectors(model, ivector_extractor)
    enrolled = vectors.mean([to_model(e, model.sample_rate, enrollment_rate, "enrollment")[0] for e in items])
    length = min(mix.shape[-1], est.shape[-1])
    return waveform_confidence(vectors, mix[:, :length].cpu(), est[:, :length].cpu(), enrolled)


def confidence_warning(output: str | os.PathLike, value: float, threshold: float) -> str | None:
    """The one-line warning for an extraction below ``threshold`` (``None`` when it is not)."""
    if math.isnan(value) or value >= threshold:
        return None
    return (f"warning: {output}: confidence {value:.3g} is below --min-confidence {threshold:.3g}: the extraction may "
            f"be another talker than the enrolled one (try a longer or cleaner enrollment).")


def write_report(path: str | os.PathLike, rows: list[dict]) -> Path:
    """Write the confidence report of extractions (atomically): JSON for a ``.json`` path (one row: an object),
    else CSV with the columns ``mixture, enrollment, output, confidence, accepted``."""
    path = Path(path)
    if path.suffix == ".json":
        return write_text(path, json.dumps(rows[0] if len(rows) == 1 else rows, indent=2) + "\n")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["mixture", "enrollment", "output", "confidence", "accepted"])
    writer.writeheader()
    writer.writerows({**r, "confidence": f"{r['confidence']:.4g}"} for r in rows)
    return write_text(path, buffer.getvalue())


def report_row(mixture: Any, enrollment: Any, output: Path, value: float, threshold: float) -> dict:
    """One row of :func:`write_report`."""
    enrollments = enrollment if _several(enrollment) else [enrollment]
    return {"mixture": str(mixture), "enrollment": " + ".join(map(str, enrollments)), "output": str(output),
            "confidence": round(value, 4), "accepted": not value < threshold}


def read_extract_list(list_path: str | os.PathLike, out_dir: str | os.PathLike
                      ) -> list[tuple[Path, EnrollmentSpec, Path]]:
    """Read ``mixture enrollment [output]`` lines (relative paths start at the list's folder; the enrollment may be
    a range, ``FILE@START-END`` in seconds; an output is relative to ``out_dir`` and stays inside it; the default is
    ``out_dir/<mixture stem>_<enrollment stem>.wav``).

    Raises:
        DatasetError: missing list, malformed line, a missing input file or a bad enrollment range (naming the line).
        OutputError: an output outside ``out_dir``, one that is an input of the list, or two lines with one output.
    """
    usage = "mixture enrollment[@START-END] [output]"
    jobs = []
    for number, (mix,), extra in read_list(list_path, 1, 2, usage=usage):
        if not extra:
            raise DatasetError(f"{list_path}, line {number}: expected '{usage}', got 1 field(s).")
        try:
            enroll = parse_enrollment(extra[0], Path(list_path).parent)
        except AudioError as err:
            raise DatasetError(f"{list_path}, line {number}: {err}") from None
        jobs.append((mix, enroll, Path(out_dir) / (extra[1] if len(extra) > 1 else
                                                   f"{mix.stem}_{enroll.path.stem}.wav")))
    check_outputs([out for *_, out in jobs], [list_path, *(p for mix, e, _ in jobs for p in (mix, e.path))], out_dir)
    return jobs


def extract_list(model_path: str | os.PathLike, list_path: str | os.PathLike, out_dir: str | os.PathLike,
                 ivector_model: str | os.PathLike | None = None, chunk_seconds: float = 8.0,
                 overlap_seconds: float = 1.0, device: str = "cpu", progress: bool = True,
                 precision: str | None = None, select: str | None = None,
                 min_confidence: float | None = None) -> list[Path]:
    """Run :func:`extract_file` over every line of a list (see :func:`read_extract_list`), with a progress bar;
    ``precision`` and ``select`` as in :func:`load_extractor`. Writes ``out_dir/confidence.csv`` (see
    :func:`write_report`) and warns on stderr of each extraction below ``min_confidence`` (``None``: the model's
    threshold, see :func:`confidence_threshold`).

    Returns:
        The written outputs, in list order.
    """
    check_out_dir(out_dir)
    model, ivectors = load_extractor(model_path, ivector_model, device, precision, select)
    check_chunking(chunk_seconds, overlap_seconds, model.sample_rate)
    min_confidence = confidence_threshold(model, min_confidence)
    jobs = read_extract_list(list_path, out_dir)
    rows = []
    for mix, enroll, out in tqdm(jobs, desc="extracting", unit="file", disable=not progress):
        scores: dict = {}
        extract_file(model, mix, enroll, out, ivectors, chunk_seconds, overlap_seconds, False, scores)
        rows.append(report_row(mix, enroll, out, scores["confidence"], min_confidence))
        if warning := confidence_warning(out, scores["confidence"], min_confidence):
            print(warning, file=sys.stderr)
    write_report(Path(out_dir) / "confidence.csv", rows)
    return [out for *_, out in jobs]
