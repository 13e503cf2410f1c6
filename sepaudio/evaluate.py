"""Evaluation of a trained model on a labelled dataset (``sepaudio evaluate``), for every kind of model.

Writes into ``out_dir``:

- separation (several outputs, scored against ``sources`` in their best order) and extraction (one output, scored
  against ``target``): ``per_utterance.csv`` (of the chosen ``metrics``: SI-SDR and SI-SDRi, SDR and SDRi, PESQ and
  STOI where the sample rate and the installed packages allow; PESQ / STOI run in a pool of processes while the
  model goes on to the next utterances; for extraction with SI-SDR also ``confusion``: 1 when the estimate is closer
  (SI-SDR) to the rest of the mixture, the interfering talkers, than to the target, so that its mean in the summary
  is the speaker confusion rate, and ``confidence``: see :mod:`sepaudio.speaker.confidence`), ``summary.json``
  (``task``, ``model``, ``parameters``, ``n``, the mean of each metric over the utterances that have it and
  ``counts``: how many had it; for extraction also
  ``confidence_auc``, the ROC AUC of the confidence telling right talkers from confused ones, and
  ``kept90_threshold`` / ``kept90_confusion``: the confidence that accepts 90 % of the extractions and the
  confusion rate among those accepted), ``examples/<id>.png`` (spectrograms of
  mixture, estimates and references);
- classification: ``per_clip.csv`` (true and predicted label, probability of the prediction), ``summary.json``
  (``task``, ``model``, ``parameters``, ``n``, ``accuracy``, ``macro_f1``, ``per_class`` {label: precision, recall,
  f1, support}, ``labels``, ``confusion`` (rows: true class), ``ms_per_clip``), ``confusion.png`` and
  ``examples/<id>.png`` (spectrograms of clips with their labels).

Evaluation runs on one device (the first GPU when there is one and the config's ``trainer.accelerator`` allows it).
"""
from __future__ import annotations

import csv
import io
import json
import math
import multiprocessing
import os
import re
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Sequence

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .cards import CARD_FILE, MODEL_FILE, resolve_model_path, update_card
from .errors import ConfigError, ModelFileError
from .fileio import check_out_dir, write_text
from .inference import resolve_device
from .metrics import classification_scores, confusion_matrix, perceptual, pit, sdr, si_sdr
from .models import EncoderMaskerDecoder, SepaudioModel, load_model
from .models.classifier import AudioClassifier
from .optional import require
from .classify import calibrate
from .plots import plot_confusion, plot_spectrograms
from .speaker.confidence import SpeakerVectors, item_confidence, kept_confusion, roc_auc

__all__ = ["evaluate", "evaluate_config", "format_summary", "METRICS", "SCORES"]

#: the columns of a separation / extraction report, in order
METRICS = ("si_sdr", "si_sdri", "sdr", "sdri", "pesq", "stoi", "confusion", "confidence")
#: the share of extractions the confidence threshold of the summary accepts
KEEP = 0.9
#: what ``metrics`` chooses from: ``si_sdr`` brings ``si_sdri``, ``sdr`` brings ``sdri``
SCORES = ("si_sdr", "sdr", "pesq", "stoi")
PERCEPTUAL = ("pesq", "stoi")




def evaluate(
    model: SepaudioModel,
    dataset: Dataset,
    out_dir: str | os.PathLike,
    n_examples: int = 3,
    permutation_invariant: bool | None = None,
    batch_size: int = 32,
    progress: bool = True,
    metrics: Sequence[str] = SCORES,
    workers: int | None = None,
) -> dict:
    """Score a model on every item of a dataset, write the reports (see the module docstring) and print a summary.

    Args:
        model: a separation model (``(1, time)`` -> ``(1, n_src, time)``), an extraction model (one output) or an
            :class:`~sepaudio.models.classifier.AudioClassifier`; it is called on ``item[k]`` for each
            ``k in model.input_keys``, on the device its parameters are on.
        dataset: separation / extraction items ``{"mixture": (T,), "sources": (n_src, T) | "target": (T,), ...}``;
            classification items ``{"audio": (T,), "label": () | (num_classes,)}``. An ``id`` entry names the
            item in the reports (else its index).
        out_dir: report folder.
        n_examples: items drawn as spectrograms.
        permutation_invariant: separation / extraction only: ``True`` scores against ``sources`` in the best
            order, ``False`` against ``target``; ``None``: ``True`` when the model gives more than one output.
        batch_size: classification clips per forward pass (separation runs one utterance at a time).
        progress: show a bar over the items.
        metrics: separation / extraction only: of :data:`SCORES`, those to compute.
        workers: processes computing PESQ / STOI beside the model (default: the usable CPU cores; 0: none, in
            this process).

    Returns:
        The summary written to ``summary.json``.
    """
    out_dir = Path(out_dir)
    model.eval()
    if isinstance(model, AudioClassifier):
        summary, rows = _classify(model, dataset, out_dir, n_examples, batch_size, progress)
        plot_confusion(out_dir / "confusion.png", summary["confusion"], summary["labels"], summary["model"])
        _write_csv(out_dir / "per_clip.csv", rows, ["id", "label", "predicted", "probability"])
    else:
        summary, rows = _separate(model, dataset, out_dir, n_examples, permutation_invariant, progress, metrics,
                                  workers)
        _write_csv(out_dir / "per_utterance.csv", rows, ["id", *summary["counts"]])
    write_text(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    print(format_summary(summary))
    return summary


def _separate(model: SepaudioModel, dataset: Dataset, out_dir: Path, n_examples: int,
              permutation_invariant: bool | None, progress: bool, metrics: Sequence[str],
              workers: int | None) -> tuple[dict, list[dict]]:
    """Per-utterance rows and the summary of a separation or extraction model."""
    device = next(model.parameters()).device
    slow = tuple(m for m in PERCEPTUAL if m in metrics)
    for name, package in (("pesq", "pesq"), ("stoi", "pystoi")):  # up front, not after the first utterance
        if name in slow:
            require(package, f"{name.upper()} scores (or leave {name} out of --metrics)")
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    pool = _pool(min(workers, len(dataset))) if slow and workers > 0 and len(dataset) > 1 else None
    rows, slow_scores, pit_mode = [], [], permutation_invariant
    vectors = SpeakerVectors.for_model(model, getattr(dataset, "extractor", None))
    try:
        with torch.inference_mode():
            for index in tqdm(range(len(dataset)), desc="evaluating", unit="utt", disable=not progress):
                item = dataset[index]
                est = model(*[item[k].unsqueeze(0).to(device) for k in model.input_keys]).cpu()
                est = est.reshape(est.shape[0], -1, est.shape[-1])[0]  # (n_out, time)
                pit_mode = est.shape[0] > 1 if permutation_invariant is None else permutation_invariant
                ref = item["sources"] if pit_mode else item["target"].reshape(1, -1)
                if ref.shape != est.shape:
                    raise ModelFileError(f"item {index}: the model gives {tuple(est.shape)} but the reference is "
                                         f"{tuple(ref.shape)}; give a model trained for this data.")
                if pit_mode:
                    est = est[pit(si_sdr, est.unsqueeze(0), ref.unsqueeze(0))[1][0]]
                name = str(item.get("id", index))
                rows.append({"id": name, **_scores(est, ref, item["mixture"], metrics)})
                if not pit_mode and "si_sdr" in metrics:
                    rows[-1].update(_confusion(est[0], ref[0], item["mixture"]))
                if not pit_mode and vectors is not None:
                    rows[-1]["confidence"] = item_confidence(vectors, est[0], item)
                if slow:
                    job = (est.float().numpy(), ref.float().numpy(), model.sample_rate, slow)
                    slow_scores.append(pool.submit(perceptual, *job) if pool else perceptual(*job))
                if index < n_examples:  # the mixture on top, then estimate and reference of each source side by side
                    panels = [("mixture", item["mixture"]), None]
                    for k in range(est.shape[0]):
                        panels += [(f"estimate {k + 1} (SI-SDR {float(si_sdr(est[k], ref[k])):.1f} dB)", est[k]),
                                   (f"reference {k + 1}", ref[k])]
                    plot_spectrograms(_example_path(out_dir, name), panels, model.sample_rate)
        for row, scores in zip(rows, slow_scores):
            row.update(scores.result() if pool else scores)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    summary = {"task": "separation" if pit_mode else "extraction", "model": model.registered_name,
               "parameters": model.num_parameters, "n": len(rows), "counts": {}}
    for key in METRICS:  # each metric over the rows that have it: PESQ fails on some references
        values = [r[key] for r in rows if key in r]
        if values:
            summary[key] = sum(values) / len(values)
            summary["counts"][key] = len(values)
    scored = [r for r in rows if "confidence" in r and "confusion" in r]
    if scored:
        scores, confused = [r["confidence"] for r in scored], [r["confusion"] > 0.5 for r in scored]
        auc = roc_auc(scores, [not c for c in confused])
        summary["confidence_auc"] = None if math.isnan(auc) else auc  # None: no confusion, or all confused
        summary["kept90_threshold"], summary["kept90_confusion"] = kept_confusion(scores, confused, KEEP)
    return summary, rows


def _pool(workers: int) -> ProcessPoolExecutor:
    """Processes for PESQ / STOI: forked where the system can (no start-up imports), else spawned."""
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method))


def _scores(est: torch.Tensor, ref: torch.Tensor, mixture: torch.Tensor, metrics: Sequence[str]) -> dict[str, float]:
    """SI-SDR(i) and SDR(i) of those in ``metrics``, averaged over sources.

    Shape: est, ref ``(n_src, time)``, mixture ``(time,)``.
    """
    mix, scores = mixture.expand_as(ref), {}
    if "si_sdr" in metrics:
        est_si = si_sdr(est, ref)
        scores.update(si_sdr=est_si.mean(), si_sdri=(est_si - si_sdr(mix, ref)).mean())
    if "sdr" in metrics:
        est_sdr, mix_sdr = sdr(torch.stack([est, mix]), ref)  # one system solve per reference for both
        scores.update(sdr=est_sdr.mean(), sdri=(est_sdr - mix_sdr).mean())
    return {k: float(v) for k, v in scores.items()}


def _confusion(est: torch.Tensor, target: torch.Tensor, mixture: torch.Tensor) -> dict[str, float]:
    """``{"confusion": 1.0}`` when an extraction is closer (SI-SDR) to what the mixture holds besides the target
    (the interfering talkers, and noise) than to the target, else ``0.0``; ``{}`` for a mixture that is the target.

    Shape: est, target, mixture ``(time,)``.
    """
    rest = mixture.reshape(-1) - target
    if not bool(rest.abs().max() > 1e-6 * target.abs().max()):
        return {}
    return {"confusion": float(si_sdr(est, rest) > si_sdr(est, target))}


def _classify(model: AudioClassifier, dataset: Dataset, out_dir: Path, n_examples: int, batch_size: int,
              progress: bool) -> tuple[dict, list[dict]]:
    """Per-clip rows and the summary of a classifier."""
    device = next(model.parameters()).device
    rows, true, predicted, seconds = [], [], [], 0.0
    with torch.inference_mode():
        for batch in tqdm(DataLoader(dataset, batch_size=batch_size), desc="evaluating", unit="batch",
                          disable=not progress):
            began = time.perf_counter()
            probs = torch.softmax(model(*[batch[k].to(device) for k in model.input_keys]), -1)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds += time.perf_counter() - began
            probs = probs.cpu()
            pred = model.decide(probs)  # the argmax, or relative to calibrated thresholds
            prob = probs.gather(-1, pred.unsqueeze(-1)).squeeze(-1)
            label = batch["label"].argmax(-1) if batch["label"].dim() == 2 else batch["label"]  # soft (mixup) labels
            for k in range(len(pred)):
                index = len(rows)
                name = str(batch["id"][k]) if "id" in batch else str(index)
                rows.append({"id": name, "label": model.labels[label[k]], "predicted": model.labels[pred[k]],
                             "probability": float(prob[k])})
                if index < n_examples:
                    plot_spectrograms(_example_path(out_dir, name), [
                        (f"{name}: true {rows[-1]['label']}, predicted {rows[-1]['predicted']} "
                         f"({rows[-1]['probability']:.2f})", batch["audio"][k])], model.sample_rate, cols=1)
            true.append(label)
            predicted.append(pred)
    confusion = confusion_matrix(torch.cat(true).numpy(), torch.cat(predicted).numpy(), model.num_classes)
    summary = {"task": "classification", "model": model.registered_name, "parameters": model.num_parameters,
               **classification_scores(confusion, model.labels), "ms_per_clip": 1000 * seconds / max(1, len(rows))}
    return summary, rows


def evaluate_config(
    config: dict,
    split: str = "test",
    model_path: str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
    n_examples: int = 3,
    metrics: Sequence[str] = SCORES,
    precision: str | None = None,
    device: str | None = None,
    calibrate_on: str | None = None,
    select: str | None = None,
) -> dict:
    """Evaluate on the dataset a training config names for ``split``: ``data.name`` with the arguments
    ``data.<split>``, in batches of ``data.batch_size`` (classification).

    Args:
        config: from :func:`sepaudio.train.load_config`.
        split: the ``data`` entry to evaluate on (``test``, ``valid``, ...).
        model_path: default ``<exp_dir>/model.pt``.
        out_dir: default ``<exp_dir>/eval_<split>``.
        n_examples: items drawn as spectrograms.
        metrics: separation / extraction only: of :data:`SCORES`, those to compute.
        precision: separation / extraction only: ``fp32`` | ``bf16`` runs the fused fast path
            (``EncoderMaskerDecoder.fast``); ``None`` the plain one.
        device: where the model runs (``cpu``, ``cuda``, ``cuda:N``); ``None``: the first GPU when there is one and
            ``trainer.accelerator`` allows it, else the CPU.
        calibrate_on: first fit the model's thresholds on the ``data.<calibrate_on>`` split (``valid``) and write
            them into the model file (atomically): a classifier's per-class decision thresholds (see
            :func:`sepaudio.classify.calibrate`; ``classify``, ``segment`` and ``predict`` use them; the summary holds
            them as ``thresholds``), an extractor's ``confidence_threshold``: the confidence that accepts
            :data:`KEEP` of its extractions there (``extract`` warns below it; the summary holds it as
            ``confidence_threshold``).
        select: ``"ivector"``: separate, then select (:class:`~sepaudio.speaker.select.SelectExtractor`): the model
            is a blind separator and each extraction is its output whose i-vector (by the dataset's i-vector
            extractor: ``data.name: with_ivectors``) is nearest the enrollment's; the model card is left alone.

    Raises:
        ConfigError: the config has no ``data.<split>`` (or ``data.<calibrate_on>``) section, ``device`` is unusable,
            or ``calibrate_on`` is given for a model that is neither a classifier nor an extractor, with ``select``,
            or for a file that is not a ``.pt`` file.
        ModelFileError: the model file is missing or unreadable.
    """
    from .data import create_dataset

    data = config["data"]
    for name in (split, calibrate_on) if calibrate_on else (split,):
        if not isinstance(data.get(name), dict):
            raise ConfigError(f"the config has no data.{name} section; add one with the dataset's arguments or pick "
                              f"another split ({', '.join(k for k, v in data.items() if isinstance(v, dict))}).")
    exp_dir = Path(config["exp_dir"])
    accelerator = str(config.get("trainer", {}).get("accelerator", "auto"))
    device = resolve_device(device) if device else torch.device(
        "cuda" if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available() else "cpu")
    model_path = model_path or exp_dir / "model.pt"
    model = load_model(model_path).to(device)
    if calibrate_on and (select or not isinstance(model, AudioClassifier) and not hasattr(model,
                                                                                            "confidence_threshold")):
        what = "a separate-then-select extractor (--select)" if select else model.registered_name
        raise ConfigError(f"--calibrate fits the decision thresholds of a classifier or the confidence threshold of "
                          f"an extraction model, not of {what}.")
    if precision is not None:
        if not isinstance(model, EncoderMaskerDecoder):
            raise ConfigError(f"--precision applies to separation / extraction models, not {model.registered_name}.")
        model.eval().fast(precision)
    dataset = create_dataset(data["name"], **data[split])
    if select is not None:
        model = _selector(model, dataset, model_path, select)
    item = dataset[0] if len(dataset) else {}
    needs = [*model.input_keys, "label" if isinstance(model, AudioClassifier) else
             "sources" if "sources" in item else "target"]
    if item and any(k not in item for k in needs):
        raise ModelFileError(f"{model_path}: holds a {model.registered_name} model, which needs {', '.join(needs)}, "
                             f"but the items of data.{split} ({data['name']}) hold {', '.join(item)}; give a model "
                             f"trained for this data.")
    out_dir = check_out_dir(out_dir or exp_dir / f"eval_{split}")
    thresholds = _calibrate(model, Path(model_path), create_dataset(data["name"], **data[calibrate_on]),
                            calibrate_on, data.get("batch_size", 32)) if calibrate_on else None
    print(f"evaluating {model.registered_name} on data.{split} ({len(dataset)} items) on one device: {device}")
    summary = evaluate(model, dataset, out_dir, n_examples, batch_size=data.get("batch_size", 32), metrics=metrics)
    if thresholds is not None:
        summary["thresholds" if isinstance(model, AudioClassifier) else "confidence_threshold"] = thresholds
        write_text(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    if select is None:
        _update_card(Path(model_path), split, data["name"], summary)
    return summary


def _calibrate(model: SepaudioModel, model_path: Path, dataset: Dataset, split: str, batch_size: int
               ) -> dict | float:
    """Fit the thresholds of a classifier (:func:`~sepaudio.classify.calibrate`) or an extractor
    (:func:`_confidence_threshold`) on ``data.<split>``, written into the model file ``model_path``."""
    path = resolve_model_path(model_path)
    if path.suffix != ".pt":
        raise ConfigError(f"--calibrate writes the thresholds into a model.pt file, and {model_path} is not one; "
                          f"give --model a model.pt (e.g. model.save('model.pt') from Python).")
    if isinstance(model, AudioClassifier):
        thresholds = calibrate(model, dataset, batch_size)
        model.save(path)
        print(f"decision thresholds fitted on data.{split} (macro F1), written to {path}: "
              + ", ".join(f"{label} {value:.3g}" for label, value in thresholds.items()))
        return thresholds
    threshold = _confidence_threshold(model, dataset, split)
    model.confidence_threshold.fill_(threshold)
    model.save(path)
    print(f"confidence threshold fitted on data.{split} (accepts {100 * KEEP:.0f} % of {len(dataset)} extractions), "
          f"written to {path}: {threshold:.4g}")
    return threshold


def _confidence_threshold(model: SepaudioModel, dataset: Dataset, split: str) -> float:
    """The confidence that accepts :data:`KEEP` of ``model``'s extractions of ``dataset`` (from mixtures and
    enrollments; the references are not scored)."""
    with tempfile.TemporaryDirectory() as scratch:  # no examples are drawn; the scores alone are kept
        _, rows = _separate(model, dataset, Path(scratch), 0, False, True, (), 0)
    scores = [row["confidence"] for row in rows if not math.isnan(row.get("confidence", math.nan))]
    if not scores:
        raise ConfigError(f"--calibrate: no extraction of data.{split} has a confidence (every one needs a speaker "
                          f"vector of the estimate, of the residual and of the enrollment: an i-vector model needs "
                          f"the dataset's i-vector extractor, data.name: with_ivectors).")
    return kept_confusion(scores, [False] * len(scores), KEEP)[0]


def _selector(model: SepaudioModel, dataset: Dataset, model_path, select: str):
    """A blind separator made an extractor by selection with the dataset's i-vector extractor."""
    from .speaker.select import SelectExtractor, check_selection

    check_selection(select)
    if tuple(model.input_keys) != ("mixture",):
        raise ModelFileError(f"{model_path}: holds a {model.registered_name} model, which needs "
                             f"{', '.join(model.input_keys)}; --select takes a blind separation model.")
    if getattr(dataset, "extractor", None) is None:
        raise ConfigError("--select ivector compares i-vectors: evaluate on an extraction config whose data.name is "
                          "with_ivectors (it names the i-vector extractor), e.g. recipes/tse_mini/conf.yml.")
    return SelectExtractor(model, dataset.extractor)


def _update_card(model_path: Path, split: str, data: str, summary: dict) -> None:
    """Add the figures to the model card of a local model folder (a Hub download in the cache is left alone)."""
    folder = model_path if model_path.is_dir() else model_path.parent
    model_file = folder / MODEL_FILE
    if not (model_path.exists() and model_file.is_file() and (folder / CARD_FILE).is_file()
            and model_file.samefile(resolve_model_path(model_path))):
        return
    try:
        print(f"model card: {update_card(folder / CARD_FILE, split, data, summary)}")
    except ModelFileError as err:
        print(f"model card not updated: {err}")


def format_summary(summary: dict) -> str:
    """A two-column text table of a summary dict (either task)."""
    lines = [f"{'model':<12} {summary['model']}", f"{'parameters':<12} {summary['parameters']:,}",
             f"{'items':<12} {summary['n']}"]
    if summary["task"] == "classification":
        lines += [f"{'accuracy':<12} {100 * summary['accuracy']:.2f} %", f"{'macro F1':<12} {summary['macro_f1']:.4f}"]
        lines += [f"{'F1 ' + c:<12} {s['f1']:.4f}" for c, s in summary["per_class"].items()]
        lines.append(f"{'ms / clip':<12} {summary['ms_per_clip']:.2f}")
        return "\n".join(lines)
    for key in METRICS:
        if key in summary:
            count = summary["counts"][key]
            lines.append(f"{key:<12} {summary[key]:.2f}" + (f"  ({count} of {summary['n']})" if count < summary["n"]
                                                              else ""))
    if "confidence_auc" in summary:
        auc = summary["confidence_auc"]
        lines += [f"{'conf. AUC':<12} " + ("n/a (one kind of outcome only)" if auc is None else f"{auc:.3f}"),
                  f"{'accept 90 %':<12} confidence >= {summary['kept90_threshold']:.3g}: confusion "
                  f"{100 * summary['kept90_confusion']:.1f} % among those kept"]
    return "\n".join(lines)


def _example_path(out_dir: Path, item_id: str) -> Path:
    """``out_dir/examples/<id>.png``; an id that is a file path (``/data/a.wav@0``) gives its last part."""
    return out_dir / "examples" / (re.sub(r"[^\w.@+-]+", "_", Path(item_id).name) + ".png")


def _write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    """Rows as CSV with the given columns; a value a row lacks is an empty cell."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text(path, buffer.getvalue())
