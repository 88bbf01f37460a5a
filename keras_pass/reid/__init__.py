"""Supervised ReID: datasets, P x K pipelines, the fine-tuning model, losses,
optimiser, evaluation (CMC/mAP/mINP), re-ranking and callbacks.

Importing this package registers the TFDS builder `market1501`, so
`tfds.load("market1501", ...)` works once the user points `manual_dir` at
the downloaded zip or folder.
"""

from keras_pass.reid.callbacks import ReIDEvaluation
from keras_pass.reid.checkpoint import from_official_checkpoint, load_official_heads
from keras_pass.reid.data import (
    PKSampler,
    make_test_dataset,
    make_train_dataset,
    test_transform,
    train_transform,
)
from keras_pass.reid.datasets import (
    ImageRecords,
    ReIDDataset,
    dukemtmc_reid,
    generic,
    load_dataset,
    load_folder,
    market1501,
    msmt17,
)
from keras_pass.reid.evaluation import (
    alpha_query_expansion,
    evaluate_features,
    evaluate_rank,
    format_results,
    pairwise_distance,
)
from keras_pass.reid.features import evaluate_model, extract_features
from keras_pass.reid.losses import ReIDLoss, batch_hard_triplet_loss, cross_entropy
from keras_pass.reid.model import ReIDModel
from keras_pass.reid.optimizers import ReIDSGD, WarmupCosineSchedule, make_optimizer
from keras_pass.reid.reranking import re_ranking, re_ranking_features
from keras_pass.reid import tfds_market1501  # noqa: F401  (registers "market1501")

