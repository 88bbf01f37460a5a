"""End-to-end recipes on top of the library: pre-training (PASS or DINO),
supervised fine-tuning, cluster-contrast USL/UDA and the embedded demo, and
the one model loader they share (`model_source`). Each recipe is a config
dataclass and one function; the CLI's flags are generated from the configs.

Data flows one way: models, pretraining, reid, uda -> recipes -> cli.
"""

_LAZY = {
    "PretrainConfig": "pretrain",
    "FinetuneConfig": "finetune",
    "USLConfig": "cluster_contrast", "UDAConfig": "cluster_contrast",
    "train_usl": "cluster_contrast", "train_uda": "cluster_contrast",
    "run_demo": "demo", "load_backbone": "model_source", "load_model": "model_source",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"keras_pass.recipes.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'keras_pass.recipes' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])
