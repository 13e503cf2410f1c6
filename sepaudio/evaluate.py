"""Evaluation of separation and extraction models: per-utterance metrics, a summary, example spectrograms.

Writes into ``out_dir``: ``per_utterance.csv`` (SI-SDR, SI-SDRi, SDR, SDRi, and PESQ / STOI where the sample rate
allows), ``summary.json`` (means), and ``examples/<id>.png`` (spectrograms of mixture, estimates, references).
"""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from .errors import ConfigError
from .fileio import atomic_path, write_text
from .metrics import pit, sdr, si_sdr
from .models import SepaudioModel, load_model

__all__ = ["evaluate", "evaluate_config", "format_summary", "METRICS"]

METRICS = ("si_sdr", "si_sdri", "sdr", "sdri", "pesq", "stoi")
PESQ_MODES = {8000: "nb", 16000: "wb"}


def _perceptual(est: torch.Tensor, ref: torch.Tensor, rate: int) -> dict[str, float]:
    """PESQ (8 / 16 kHz only) and STOI, averaged over sources; metrics whose package is missing are left out.

    Shape: est, ref ``(n_src, time)``.
    """
    from torchmetrics.functional.audio import perceptual_evaluation_speech_quality, short_time_objective_intelligibility

    out = {}
    try:
        if rate in PESQ_MODES:
            out["pesq"] = float(perceptual_evaluation_speech_quality(est, ref, rate, PESQ_MODES[rate]).mean())
    except (ModuleNotFoundError, RuntimeError):  # pesq missing, or no utterance detected in a silent reference
        pass
    try:
        out["stoi"] = float(short_time_objective_intelligibility(est, ref, rate).mean())
    except ModuleNotFoundError:
        pass
    return out


def _scores(est: torch.Tensor, ref: torch.Tensor, mixture: torch.Tensor, rate: int) -> dict[str, float]:
    """Metrics averaged over sources. Shape: est, ref ``(n_src, time)``, mixture ``(time,)``."""
    mix = mixture.expand_as(ref)
    est_si, est_sdr = si_sdr(est, ref), sdr(est, ref)
    scores = {"si_sdr": est_si.mean(), "si_sdri": (est_si - si_sdr(mix, ref)).mean(),
              "sdr": est_sdr.mean(), "sdri": (est_sdr - sdr(mix, ref)).mean()}
    return {**{k: float(v) for k, v in scores.items()}, **_perceptual(est, ref, rate)}


def evaluate(
    model: SepaudioModel,
    dataset: Dataset,
    out_dir: str | os.PathLike,
    n_examples: int = 3,
    permutation_invariant: bool | None = None,
    progress: bool = True,
) -> dict:
    """Score a model on every item of a dataset and write the reports.

    The model is called as ``model(*[item[k] for k in model.input_keys])`` (each with a batch axis of one).

    Args:
        model: a separation model (``(1, time)`` -> ``(1, n_src, time)``) or an extraction model (one output).
        dataset: items with ``mixture`` (T,) and the reference: ``sources`` (n_src, T) or ``target`` (T,);
            an ``id`` entry names the item in the reports (else its index).
        out_dir: folder for ``per_utterance.csv``, ``summary.json`` and ``examples/``.
        n_examples: items drawn as spectrograms.
        permutation_invariant: ``True`` scores against ``sources`` in the best order (blind separation);
            ``False`` against ``target`` (extraction). ``None``: ``True`` when the model gives more than one output.
        progress: show a bar over the items.

    Returns:
        Summary: ``n``, the mean of every metric, the model name and its parameter count.
    """
    out_dir = Path(out_dir)
    device = next(model.parameters()).device
    model.eval()
    rows = []
    with torch.inference_mode():
        for index in tqdm(range(len(dataset)), desc="evaluating", unit="utt", disable=not progress):
            item = dataset[index]
            est = model(*[item[k].unsqueeze(0).to(device) for k in model.input_keys]).cpu()
            est = est.reshape(est.shape[0], -1, est.shape[-1])[0]  # (n_out, time)
            pit_mode = est.shape[0] > 1 if permutation_invariant is None else permutation_invariant
            ref = item["sources"] if pit_mode else item["target"].reshape(1, -1)
            if ref.shape != est.shape:
                raise ValueError(f"item {index}: the model gives {tuple(est.shape)} but the reference is "
                                 f"{tuple(ref.shape)}")
            if pit_mode:
                est = est[pit(si_sdr, est.unsqueeze(0), ref.unsqueeze(0))[1][0]]
            name = str(item.get("id", index))
            rows.append({"id": name, **_scores(est, ref, item["mixture"], model.sample_rate)})
            if index < n_examples:
                plot_example(out_dir / "examples" / f"{name}.png", item["mixture"], est, ref, model.sample_rate)
    summary = {"model": model.registered_name, "parameters": model.num_parameters, "n": len(rows)}
    summary.update({k: sum(r[k] for r in rows) / len(rows) for k in METRICS if rows and k in rows[0]})
    _write_csv(out_dir / "per_utterance.csv", rows)
    write_text(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    print(format_summary(summary))
    return summary


def evaluate_config(
    config: dict,
    split: str = "test",
    model_path: str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
    n_examples: int = 3,
) -> dict:
    """Evaluate on the dataset a training config names for ``split`` (``data.<split>`` holds its arguments).

    Args:
        config: from :func:`sepaudio.train.load_config`.
        split: the ``data`` entry to evaluate on (``test``, ``valid``, ...).
        model_path: default ``<exp_dir>/model.pt``.
        out_dir: default ``<exp_dir>/eval_<split>``.
        n_examples: items drawn as spectrograms.

    Raises:
        ConfigError: the config has no ``data.<split>`` section.
    """
    from .data import create_dataset

    if not isinstance(config["data"].get(split), dict):
        raise ConfigError(f"the config has no data.{split} section; add one with the dataset's arguments or pick "
                          f"another split ({', '.join(k for k, v in config['data'].items() if isinstance(v, dict))}).")
    exp_dir = Path(config["exp_dir"])
    model = load_model(model_path or exp_dir / "model.pt")
    dataset = create_dataset(config["data"]["name"], **config["data"][split])
    return evaluate(model, dataset, out_dir or exp_dir / f"eval_{split}", n_examples)


def format_summary(summary: dict) -> str:
    """A two-column text table of a summary dict."""
    lines = [f"{'model':<12} {summary['model']}", f"{'parameters':<12} {summary['parameters']:,}",
             f"{'utterances':<12} {summary['n']}"]
    lines += [f"{k:<12} {summary[k]:.2f}" for k in METRICS if k in summary]
    return "\n".join(lines)


def _write_csv(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    fields = ["id"] + [k for k in METRICS if rows and k in rows[0]]
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text(path, buffer.getvalue())


def plot_example(path: Path, mixture: torch.Tensor, est: torch.Tensor, ref: torch.Tensor, rate: int) -> Path:
    """Spectrograms: the mixture on top, then estimate and reference of each source side by side.

    Shape: mixture ``(time,)``, est and ref ``(n_src, time)``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_src = est.shape[0]
    fig, axes = plt.subplots(n_src + 1, 2, figsize=(10, 2.2 * (n_src + 1)), squeeze=False)
    panels = [(axes[0, 0], mixture, "mixture")]
    for k in range(n_src):
        panels += [(axes[k + 1, 0], est[k], f"estimate {k + 1} (SI-SDR {float(si_sdr(est[k], ref[k])):.1f} dB)"),
                   (axes[k + 1, 1], ref[k], f"reference {k + 1}")]
    axes[0, 1].axis("off")
    for ax, wav, title in panels:
        ax.specgram(wav.double().numpy(), NFFT=256, Fs=rate, noverlap=192, cmap="magma")
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("Hz")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)
    return path
