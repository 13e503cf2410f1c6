"""Models, one file per family. Every model is registered by name; :func:`load_model` rebuilds any saved one."""
from .base import EncoderMaskerDecoder, SepaudioModel, create_model, list_models, register_model
from .loading import load_model, model_from_record
from .conv_tasnet import ConvTasNet
from . import classifier, esresnet, mobilenet, pydmobilenet, swishnet, xception  # noqa: F401  (registers them)
from .tsenet import TseNet
from .mitas import MiTAS
from .slicenet import SliceNetTasNet

__all__ = ["SepaudioModel", "EncoderMaskerDecoder", "ConvTasNet", "TseNet", "MiTAS", "SliceNetTasNet", "create_model",
           "list_models", "load_model", "model_from_record", "register_model"]
