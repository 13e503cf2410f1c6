"""sepaudio: audio source separation, target speaker extraction and classification with depthwise separable
convolutions."""
__version__ = "0.1.0"

from .errors import AudioError, ConfigError, DatasetError, ModelFileError, SepaudioError  # noqa: E402
from .models import create_model, list_models, load_model  # noqa: E402

__all__ = ["__version__", "load_model", "create_model", "list_models", "SepaudioError", "AudioError",
           "ModelFileError", "DatasetError", "ConfigError"]
