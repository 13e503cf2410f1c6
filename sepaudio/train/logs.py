"""The training log: Lightning's CSV logger, made safe to resume (rows kept up to the checkpoint, rewritten
atomically, an unreadable log moved aside rather than deleted)."""
from __future__ import annotations

import csv
import io
import os
import sys
from pathlib import Path

import lightning as L
import torch
from lightning.fabric.loggers.logger import rank_zero_experiment

from ..fileio import write_text

__all__ = ["CSVLog", "keep_log"]


class _CSVWriter(L.pytorch.loggers.csv_logs.ExperimentWriter):
    """Lightning's CSV writer, except that it leaves an existing log to :func:`keep_log` (Lightning's deletes it)
    and rewrites the log for a new column atomically: a run killed at any moment keeps the rows it had written."""

    def _check_log_dir_exists(self) -> None:
        pass

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        _write_csv(Path(self.metrics_file_path), fieldnames, _read_csv(Path(self.metrics_file_path))[1])


class CSVLog(L.pytorch.loggers.CSVLogger):
    """Lightning's CSV logger with :class:`_CSVWriter`."""

    @property
    @rank_zero_experiment
    def experiment(self) -> _CSVWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _CSVWriter(log_dir=self.log_dir)
        return self._experiment


def _read_csv(path: Path) -> tuple[list[str], list[dict]]:
    """Header and rows of a CSV log, without a last line cut short by a kill."""
    text = path.read_text()
    if text and not text.endswith("\n"):
        text = text[:text.rfind("\n") + 1]
    reader = csv.DictReader(io.StringIO(text))
    return list(reader.fieldnames or []), list(reader)


def _write_csv(path: Path, fieldnames: list[str], rows: list[dict]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fieldnames)
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, text.getvalue())


def keep_log(logger: CSVLog, checkpoint: Path | None) -> None:
    """Keep the rows of the CSV log logged before ``checkpoint`` (rows after it are logged again by the resumed run;
    without a checkpoint, none), rewriting the file atomically."""
    log = Path(logger.log_dir) / "metrics.csv"
    if not log.exists():
        return
    step = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)["global_step"] if checkpoint else 0
    try:
        fields, rows = _read_csv(log)
    except (UnicodeDecodeError, csv.Error) as err:  # not a CSV log: kept aside, never deleted
        aside = log.with_name(log.name + ".unreadable")
        os.replace(log, aside)
        print(f"warning: {log} is not a readable CSV log ({err}); moved it to {aside} and started a new log",
              file=sys.stderr)
        return
    rows = [row for row in rows if (row.get("step") or "").isdigit() and int(row["step"]) < step]
    if not rows:
        log.unlink()
        return
    _write_csv(log, fields, rows)
    logger.experiment.metrics_keys = fields  # the columns the writer appends to


