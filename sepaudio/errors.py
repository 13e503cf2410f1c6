"""Exceptions for problems a user can cause and fix. Each message names the file and what to do."""


class SepaudioError(Exception):
    """Base of every error sepaudio raises on purpose."""


class AudioError(SepaudioError, ValueError):
    """An audio file is missing, unreadable, empty, non-finite or has an unusable channel count."""


class ModelFileError(SepaudioError, ValueError):
    """A saved model is missing, corrupt, or of another kind than the caller needs."""


class DatasetError(SepaudioError, ValueError):
    """A dataset folder, list or metadata file is missing or names files that are not there."""


class ConfigError(SepaudioError, ValueError):
    """A configuration file or override is malformed or names something unknown."""


class OutputError(SepaudioError, ValueError):
    """An output would overwrite an input or another output of the same command, or leave its output folder."""


class MissingDependencyError(SepaudioError, ImportError):
    """A feature needs a package that is not installed; the message names the ``pip install 'sepaudio[extra]'``."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every temporary file is removed on the way out (exit status 143)."""
