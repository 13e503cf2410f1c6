"""Blind separation of recordings with a trained model: one wav per source, long files in bounded memory."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import torch
from tqdm.auto import tqdm

from .errors import AudioError, ModelFileError
from .fileio import check_out_dir, check_outputs, check_readable
from .inference import check_chunking, process_file, resolve_device
from .models import EncoderMaskerDecoder, SepaudioModel, load_model

__all__ = ["load_separator", "separate_file", "separate_files", "expand_inputs", "output_paths", "AUDIO_SUFFIXES"]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
#: how deep ``@list`` files may name other ``@list`` files
MAX_LIST_DEPTH = 16


def load_separator(path: str | os.PathLike, device: str = "cpu", precision: str | None = None) -> EncoderMaskerDecoder:
    """Load a blind separation model (it takes the mixture alone and returns one output per source); with a
    ``precision`` (``fp32`` | ``bf16``) it infers through the fused fast path (see ``EncoderMaskerDecoder.fast``).

    Raises:
        ModelFileError: unreadable file, or a model that needs more than the mixture (e.g. a speaker extractor).
        ConfigError: a device this machine does not have.
    """
    device = resolve_device(device)
    model = load_model(path, expected=EncoderMaskerDecoder)
    if tuple(model.input_keys) != ("mixture",):
        raise ModelFileError(f"{path}: holds a {model.registered_name} model, which needs "
                             f"{', '.join(model.input_keys)}; 'separate' takes blind separation models "
                             f"(conv_tasnet, mitas). Use 'sepaudio extract' for speaker extraction.")
    return model.to(device).eval().fast(precision)


def separate_file(
    model: SepaudioModel,
    mixture: str | os.PathLike,
    out_dir: str | os.PathLike,
    chunk_seconds: float = 8.0,
    overlap_seconds: float = 1.0,
    progress: bool = True,
) -> list[Path]:
    """Separate one recording into ``out_dir/<name>_s1.wav``, ``<name>_s2.wav``, ... (at the model's rate).

    The recording is processed in overlapping chunks (see :func:`sepaudio.inference.process_file`); each output
    follows one source across chunk borders.

    Args:
        model: a blind separation model, ``(1, time)`` -> ``(1, n_src, time)``.
        mixture: the recording (mixed down to mono, resampled to the model's rate when needed).
        out_dir: folder for the outputs (created).
        chunk_seconds, overlap_seconds: chunk length and overlap; memory grows with the chunk, not the file.
        progress: show a bar over the chunks.

    Returns:
        The written paths, one per source.

    Raises:
        OutputError: an output would replace the mixture (nothing is written).
    """
    mixture = Path(mixture)
    device = next(model.parameters()).device
    out_paths = output_paths(model, mixture, out_dir)

    def fn(chunk: torch.Tensor) -> torch.Tensor:
        return model(chunk.to(device)).cpu()

    return process_file(mixture, out_paths, fn, model.sample_rate, chunk_seconds, overlap_seconds,
                        align_sources=True, progress=progress)


def output_paths(model: SepaudioModel, mixture: str | os.PathLike, out_dir: str | os.PathLike) -> list[Path]:
    """``out_dir/<name>_s1.wav``, ``<name>_s2.wav``, ...: where :func:`separate_file` writes ``mixture``'s sources."""
    return [Path(out_dir) / f"{Path(mixture).stem}_s{k + 1}.wav" for k in range(model.n_src)]


def expand_inputs(inputs: Iterable[str | os.PathLike], _lists: tuple[Path, ...] = ()) -> list[Path]:
    """Files as given, folders as the audio files they hold (sorted, recursively); a text file ``@list.txt``
    names one input per line (an ``@list`` there too, up to ``MAX_LIST_DEPTH`` deep).

    Raises:
        AudioError: an input that does not exist, a folder without audio files, or a list that includes itself.
    """
    files: list[Path] = []
    for item in map(str, inputs):
        if item.startswith("@"):
            listing = Path(item[1:])
            if not listing.is_file():
                raise AudioError(f"{listing}: no such list file; give a text file with one audio path per line.")
            check_readable(listing, AudioError)
            chain = " -> ".join(map(str, (*_lists, listing.resolve())))
            if listing.resolve() in _lists:
                raise AudioError(f"{listing}: includes itself ({chain}); remove the line @{listing} from "
                                 f"{_lists[-1]}.")
            if len(_lists) >= MAX_LIST_DEPTH:
                raise AudioError(f"{listing}: lists nest more than {MAX_LIST_DEPTH} deep ({chain}); name the audio "
                                 f"files or folders directly.")
            lines = listing.read_text(errors="surrogateescape").splitlines()
            files += expand_inputs((line.strip() for line in lines if line.strip()), (*_lists, listing.resolve()))
            continue
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                raise AudioError(f"{path}: folder holds no {'/'.join(AUDIO_SUFFIXES)} files.")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise AudioError(f"{path}: no such file or folder; check the path.")
    return files


def separate_files(
    model_path: str | os.PathLike,
    inputs: Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    chunk_seconds: float = 8.0,
    overlap_seconds: float = 1.0,
    device: str = "cpu",
    progress: bool = True,
    precision: str | None = None,
) -> dict[Path, list[Path]]:
    """Separate many recordings with one model, with a progress bar over the files.

    Args:
        model_path: a saved blind separation model.
        inputs: files, folders, or ``@list.txt`` (see :func:`expand_inputs`).
        out_dir: where ``<name>_s<k>.wav`` go; recordings with the same name in different folders keep their
            relative folder under ``out_dir``.
        chunk_seconds, overlap_seconds: see :func:`separate_file`.
        device: ``cpu`` or ``cuda``.
        progress: show progress bars.
        precision: ``fp32`` | ``bf16``: the fused fast path (see :func:`load_separator`); ``None``: the plain one.

    Returns:
        Each input mapped to its written outputs.

    Raises:
        OutputError: before anything is written, when an output would replace any input of the batch or another
            output, or ``out_dir`` is a file.
    """
    check_out_dir(out_dir)
    model = load_separator(model_path, device, precision)
    check_chunking(chunk_seconds, overlap_seconds, model.sample_rate)
    files = expand_inputs(inputs)
    names = [f.stem for f in files]
    clash = len(set(names)) < len(names)
    targets = {path: Path(out_dir) / (_relative_folder(path, files) if clash else "") for path in files}
    check_outputs([out for path in files for out in output_paths(model, path, targets[path])], files, out_dir)
    results = {}
    for path in tqdm(files, desc="separating", unit="file", disable=not progress or len(files) < 2):
        results[path] = separate_file(model, path, targets[path], chunk_seconds, overlap_seconds, progress=progress)
    return results


def _relative_folder(path: Path, files: list[Path]) -> Path:
    """The folder of ``path`` relative to the deepest folder common to all ``files``."""
    common = Path(os.path.commonpath([str(f.resolve().parent) for f in files]))
    return path.resolve().parent.relative_to(common)
