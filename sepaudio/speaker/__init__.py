"""Speaker vectors: Kaldi-style i-vectors (MFCC + VAD + CMN, GMM-UBM, total variability, LDA, length norm).

The speaker encoder learned jointly with an extractor is a block: :class:`sepaudio.nn.SpeakerEncoder`."""
from .features import FeatureConfig, speaker_features
from .gmm import DiagGMM, train_ubm
from .ivector import IVectorExtractor, load_ivector_extractor, train_ivector_extractor
from .scoring import cosine_trials, equal_error_rate

__all__ = ["FeatureConfig", "speaker_features", "DiagGMM", "train_ubm", "IVectorExtractor",
           "load_ivector_extractor", "train_ivector_extractor", "cosine_trials", "equal_error_rate"]
