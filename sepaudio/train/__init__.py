"""Training: ``sepaudio train CONFIG.yaml [key=value ...]`` and :func:`train` from Python (needs the ``train``
extra: Lightning).

- :mod:`sepaudio.config`: reading and checking configs (re-exported here: :func:`load_config`).
- :mod:`.run`: :func:`train`, building the model, loss and loaders a config names, resuming.
- :mod:`.system`: the Lightning module, its random state and learning-rate schedule.
- :mod:`.callbacks`: callbacks a config names; atomic checkpoint writes.
- :mod:`.logs`: the CSV training log.
"""
from ..optional import require

require("lightning", "training")

from ..config import DEFAULTS, check_config, load_config  # noqa: E402
from .logs import CSVLog, keep_log  # noqa: E402
from .run import build, check_resume, cpu_share, export_best, train, worker_context  # noqa: E402
from .system import TrainingSystem  # noqa: E402

__all__ = ["train", "load_config", "check_config", "DEFAULTS", "build", "cpu_share", "worker_context",
           "check_resume", "export_best", "TrainingSystem", "CSVLog", "keep_log"]
