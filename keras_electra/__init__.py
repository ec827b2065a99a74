"""keras_electra: ELECTRA pretraining, fine-tuning, checkpoint interop and export for Keras 3."""

from keras_electra.config import ElectraConfig
from keras_electra.data.tokenizer import ElectraTokenizer
from keras_electra.errors import CheckpointError, DataError, ElectraError, TrainingError, VocabularyError
from keras_electra.models.backbone import ElectraBackbone
from keras_electra.models.discriminator import ElectraDiscriminator
from keras_electra.models.generator import ElectraGenerator
from keras_electra.pretraining.optimization import ElectraAdamW, WarmupLinearDecay, create_optimizer
from keras_electra.pretraining.pretrainer import ElectraPretrainer

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "DataError",
    "ElectraAdamW",
    "ElectraBackbone",
    "ElectraConfig",
    "ElectraDiscriminator",
    "ElectraError",
    "ElectraGenerator",
    "ElectraPretrainer",
    "ElectraTokenizer",
    "TrainingError",
    "VocabularyError",
    "WarmupLinearDecay",
    "create_optimizer",
]
