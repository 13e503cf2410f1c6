"""Model cards and model folders: what ``sepaudio train`` writes beside ``model.pt`` and what a user pushes to a hub.

A model folder holds ``model.pt``, ``README.md`` (a Hugging Face model card: YAML front matter with
``library_name: sepaudio``, ``pipeline_tag``, ``tags`` and a ``sepaudio`` entry with the model's name, task,
parameter count, sample rate and evaluation figures; then sections on the task, data, configuration, evaluation and
the commands that use it) and, for an i-vector TseNet, ``ivector.pt`` (its i-vector extractor).
``model.save_pretrained(folder)`` writes the Hub layout instead: the card, ``model.safetensors``, ``config.json``
and, for an i-vector TseNet, ``ivector.safetensors``. An Asteroid model folder or repository holds
``pytorch_model.bin``.
:func:`resolve_model_path` turns a model file, such a folder or a Hub repository id (``owner/name``, downloaded once
into the Hugging Face cache, which ``HF_HUB_OFFLINE=1`` reads without a network) into the model file to load.

This module reads no tensors: it takes models by their plain attributes (``registered_name``, ``num_parameters``,
``sample_rate``, ``model_args``, ``input_keys``), so the loader below the models can use it.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from .errors import ModelFileError
from .fileio import atomic_path, special_kind, write_text
from .optional import require

MODEL_FILE, CARD_FILE, IVECTOR_FILE = "model.pt", "README.md", "ivector.pt"
#: the files of the layout :meth:`~sepaudio.models.SepaudioModel.save_pretrained` writes
WEIGHTS_FILE, CONFIG_FILE, IVECTOR_WEIGHTS = "model.safetensors", "config.json", "ivector.safetensors"
#: the weights file of an Asteroid model folder or Hub repository
ASTEROID_FILE = "pytorch_model.bin"
#: task -> (Hugging Face pipeline tag, task tag, title, what the model does)
TASKS = {
    "separation": ("audio-to-audio", "speech-separation", "Blind speech separation",
                   "splits a mixture of speakers into one waveform each"),
    "extraction": ("audio-to-audio", "target-speaker-extraction", "Target speaker extraction",
                   "extracts one speaker from a mixture, given an enrollment recording of that speaker"),
    "classification": ("audio-classification", "audio-classification", "Audio classification",
                       "labels audio clips"),
}
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_MODEL_SUFFIXES = (".pt", ".ckpt", ".pth", ".bin", ".safetensors")
__all__ = ["MODEL_FILE", "CARD_FILE", "IVECTOR_FILE", "WEIGHTS_FILE", "CONFIG_FILE", "IVECTOR_WEIGHTS", "ASTEROID_FILE",
           "task_of", "render_card", "parse_card", "write_card", "update_card", "resolve_model_path"]


def task_of(model: Any) -> str:
    """``separation``, ``extraction`` or ``classification``, from the batch entries the model takes."""
    keys = tuple(model.input_keys)
    if keys == ("audio",):
        return "classification"
    return "extraction" if len(keys) > 1 else "separation"


def render_card(meta: dict, config: dict | None = None) -> str:
    """The card's text: front matter from ``meta`` and the sections.

    Args:
        meta: the ``sepaudio`` entry: ``model``, ``task``, ``parameters``, ``sample_rate``, ``evaluation``
            (``{split: {"data": name, figure: value}}``, may be empty), and where they apply ``labels`` (class
            names) and ``ivector_extractor`` (the file name of the folder's i-vector extractor).
        config: the training config (its ``model``, ``data``, ``loss``, ``optim``, ``trainer`` sections are shown).
    """
    pipeline, tag, title, does = TASKS[meta["task"]]
    front = {"library_name": "sepaudio", "pipeline_tag": pipeline, "tags": ["sepaudio", tag, meta["model"]],
             "sepaudio": meta}
    config = config or {}
    labels = f" Classes: {', '.join(meta['labels'])}." if meta.get("labels") else ""
    lines = [
        "---", yaml.safe_dump(front, sort_keys=False).rstrip(), "---", "",
        f"# {meta['model']} (sepaudio)", "",
        f"A [sepaudio](https://pypi.org/project/sepaudio/) `{meta['model']}` model that {does}.", "",
        "## Task", "", f"{title} at {meta['sample_rate']} Hz; {meta['parameters']:,} parameters.{labels}", "",
        "## Data", "", "The training run's `data` section (paths are those of the machine it ran on):", "",
        _yaml_block({"data": (config or {}).get("data", "not recorded")}),
        "## Configuration", "", _yaml_block({k: config[k] for k in ("model", "loss", "optim", "trainer")
                                             if k in (config or {})}),
        _evaluation_section(meta.get("evaluation") or {}), _usage_section(meta),
    ]
    return "\n".join(lines)


def _yaml_block(value: dict) -> str:
    return "```yaml\n" + yaml.safe_dump(value, sort_keys=False) + "```\n"


def _evaluation_section(evaluation: dict) -> str:
    lines = ["## Evaluation", ""]
    if not evaluation:
        return "\n".join(lines + ["Not evaluated yet: `sepaudio evaluate CONFIG` adds the figures here.", "", ""])
    figures = [k for k in dict.fromkeys(k for s in evaluation.values() for k in s) if k != "data"]
    lines += ["| split | data | " + " | ".join(figures) + " |", "|---|---|" + "---:|" * len(figures)]
    for split, scores in evaluation.items():
        cells = [f"{scores[k]:.4g}" if isinstance(scores.get(k), float) else str(scores.get(k, "")) for k in figures]
        lines.append(f"| {split} | {scores.get('data', '')} | " + " | ".join(cells) + " |")
    return "\n".join(lines + ["", ""])


def _usage_section(meta: dict) -> str:
    task, repo = meta["task"], "OWNER/NAME"
    commands = {
        "separation": f"sepaudio separate --model {repo} mixture.wav -o out/",
        "extraction": f"sepaudio extract --model {repo} --mixture mixture.wav --enroll enrollment.wav -o target.wav",
        "classification": f"sepaudio classify --model {repo} clip.wav\n"
                          f"sepaudio segment --model {repo} recording.wav -o timelines/",
    }
    note = (f"\nThe folder's `{meta['ivector_extractor']}` is the i-vector extractor the model was trained with; "
            f"`extract` uses it unless `--ivector-model` names another.\n" if meta.get("ivector_extractor") else "")
    return "\n".join([
        "## Usage", "",
        f"`--model` and `sepaudio.load_model` take this folder or its Hub repository id ({repo}).", "",
        "```bash", commands[task], f"sepaudio info {repo}",
        f"sepaudio export {repo} --format onnx -o model.onnx", "```", "",
        "```python", "import sepaudio", "", f'model = sepaudio.load_model("{repo}")', "```", note,
    ])


def parse_card(path: str | os.PathLike) -> tuple[dict, str]:
    """Read a sepaudio model card.

    Returns:
        ``(front matter, body)``; the front matter has ``library_name: sepaudio`` and a ``sepaudio`` entry.

    Raises:
        ModelFileError: no card, no YAML front matter, or not a sepaudio card (naming the path).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no model card; a model folder holds {MODEL_FILE} and {CARD_FILE} (written by "
                             f"'sepaudio train').")
    text = path.read_text(errors="replace")
    match = re.match(r"---\r?\n(.*?)\r?\n---\r?\n?(.*)", text, re.S)
    try:
        front = yaml.safe_load(match.group(1)) if match else None
    except yaml.YAMLError as err:
        raise ModelFileError(f"{path}: the model card's front matter is not valid YAML ({err}).") from err
    if not isinstance(front, dict) or front.get("library_name") != "sepaudio" or \
            not isinstance(front.get("sepaudio"), dict):
        raise ModelFileError(f"{path}: not a sepaudio model card: it needs YAML front matter between '---' lines "
                             f"with 'library_name: sepaudio' and a 'sepaudio' entry; write it with 'sepaudio train' "
                             f"or copy one from a trained run.")
    return front, match.group(2)


def write_card(folder: str | os.PathLike, model: Any, config: dict | None = None,
               ivector_file: str | None = None) -> Path:
    """Write ``folder/README.md`` for ``model`` (atomically) and, for an i-vector TseNet trained with an extractor
    file named in ``config`` (``data.train.extractor``), copy that file to ``folder/ivector.pt``.

    Args:
        folder: the model folder (``model.pt`` is there or will be).
        model: a sepaudio model.
        config: the training config.
        ivector_file: the name of the i-vector extractor already written in the folder (``save_pretrained``'s
            ``ivector.safetensors``); then nothing is copied.

    Returns:
        The card's path.
    """
    folder = Path(folder)
    meta = {"model": model.registered_name, "task": task_of(model), "parameters": int(model.num_parameters),
            "sample_rate": int(model.sample_rate)}
    if getattr(model, "labels", None):
        meta["labels"] = list(model.labels)
    if model.model_args.get("conditioning") == "ivector" and ivector_file is None:
        extractor = ((config or {}).get("data", {}).get("train") or {}).get("extractor")
        if extractor and Path(extractor).is_file() and Path(extractor).resolve() != (folder / IVECTOR_FILE).resolve():
            with atomic_path(folder / IVECTOR_FILE) as tmp:
                shutil.copyfile(extractor, tmp)
        if (folder / IVECTOR_FILE).is_file():
            ivector_file = IVECTOR_FILE
    if ivector_file:
        meta["ivector_extractor"] = ivector_file
    meta["evaluation"] = {}
    return write_text(folder / CARD_FILE, render_card(meta, config))


def update_card(path: str | os.PathLike, split: str, data: str, summary: dict) -> Path:
    """Put the figures of an evaluation (``summary.json``'s numbers) into a card's front matter and its Evaluation
    section; the rest of the card is kept as it is.

    Args:
        path: the card.
        split: the evaluated split (``test``, ``valid``, ...).
        data: the dataset's name.
        summary: from :func:`sepaudio.evaluate.evaluate`.

    Raises:
        ModelFileError: a missing or malformed card.
    """
    front, body = parse_card(path)
    scores = {k: round(v, 4) if isinstance(v, float) else v for k, v in summary.items()
              if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "parameters"}
    evaluation = dict(front["sepaudio"].get("evaluation") or {})
    evaluation[split] = {"data": data, **scores}
    front["sepaudio"]["evaluation"] = evaluation
    section = _evaluation_section(evaluation)
    start = body.find("## Evaluation")
    if start < 0:
        body = body.rstrip("\n") + "\n\n" + section
    else:
        end = body.find("\n## ", start + 1)
        body = body[:start] + section + (body[end + 1:] if end >= 0 else "")
    return write_text(path, "---\n" + yaml.safe_dump(front, sort_keys=False) + "---\n" + body)


def resolve_model_path(source: str | os.PathLike) -> Path:
    """The model file that ``source`` names: a file as it is; in a folder, ``model.safetensors`` (with its
    ``config.json``, written by ``save_pretrained``), ``model.pt`` (its card checked) or an Asteroid model's
    ``pytorch_model.bin``; or that file of a Hugging Face Hub repository ``owner/name`` (downloaded once into the
    Hugging Face cache, ``HF_HUB_CACHE`` / ``HF_HOME``; with ``HF_HUB_OFFLINE=1`` only the cache is read).

    Raises:
        ModelFileError: a missing file or folder that is no repository id, a folder of none of these layouts or
            with a missing or malformed card, or a repository that cannot be fetched (naming it and why).
    """
    path = Path(source)
    kind = special_kind(path)
    if kind not in (None, "a folder"):  # a FIFO would block, a device never end
        raise ModelFileError(f"{path}: is {kind}, not a model file; give a model file, folder or Hub id.")
    if path.is_file():
        return path
    if path.is_dir():
        return _model_in_folder(path)
    text = str(source)
    if not _REPO_ID.fullmatch(text) or text.endswith(_MODEL_SUFFIXES):
        raise ModelFileError(f"{path}: no such model file or folder; check the path (models are written by "
                             f"'sepaudio train'; a Hub repository is named owner/name).")
    return _model_in_folder(_download(text), source=text)


def _model_in_folder(folder: Path, source: str | None = None) -> Path:
    where = f"{source} ({folder})" if source else str(folder)
    weights, config = (folder / WEIGHTS_FILE).is_file(), (folder / CONFIG_FILE).is_file()
    if weights and config:
        return folder / WEIGHTS_FILE
    if weights or (config and not (folder / MODEL_FILE).is_file()):
        found, missing = (WEIGHTS_FILE, CONFIG_FILE) if weights else (CONFIG_FILE, WEIGHTS_FILE)
        raise ModelFileError(f"{where}: holds {found} but not {missing}; a folder written by model.save_pretrained "
                             f"holds both (save the model again).")
    if not (folder / MODEL_FILE).is_file():
        if (folder / ASTEROID_FILE).is_file():
            return folder / ASTEROID_FILE
        raise ModelFileError(f"{where}: a model folder holds {MODEL_FILE} and {CARD_FILE}; {MODEL_FILE} is missing "
                             f"(a folder written by model.save_pretrained holds {WEIGHTS_FILE} and {CONFIG_FILE}, an "
                             f"Asteroid model {ASTEROID_FILE}).")
    parse_card(folder / CARD_FILE)
    return folder / MODEL_FILE


def _download(repo_id: str) -> Path:
    """The local snapshot of a Hub repository (fetched on first use, from the cache afterwards)."""
    snapshot_download = require("huggingface_hub", "Loading a model from the Hugging Face Hub").snapshot_download

    try:
        return Path(snapshot_download(repo_id))
    except Exception as err:  # offline and not cached, no such repository, no network, ...
        offline = " (HF_HUB_OFFLINE is set: only the cache is read)" if os.environ.get("HF_HUB_OFFLINE") else ""
        raise ModelFileError(f"{repo_id}: not a local file or folder, and the Hugging Face Hub repository could not "
                             f"be fetched{offline}: {type(err).__name__}: {err}") from err
