"""What each cause of an inexact resume costs, measured on tiny real runs.

    PYTHONPATH=. KERAS_BACKEND=jax python tests/exact_resume_causes.py OUT_DIR

For pre-training (`recipes.pretrain`) and fine-tuning (`recipes.finetune`):
an uninterrupted reference run; one run killed (a subprocess, os._exit)
mid-epoch; then resumes of copies of the killed run, each with ONE of the
fixes undone (the behaviour before issue 16) or none. Reported: the
distance of the final backbone weights from the reference's, relative to
how far training moved the reference from its start (`||w - w_ref|| /
||w_ref - w_0||`), and the largest difference of the logged epoch losses.
"""

import os
import shutil
import subprocess
import sys
from unittest import mock

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from keras_pass import io  # noqa: E402
from keras_pass.models.backbone import PASSBackbone  # noqa: E402
from keras_pass.data.synthetic import write_unlabeled  # noqa: E402
from keras_pass import checkpoint  # noqa: E402
from keras_pass.recipes import finetune as finetune_recipe  # noqa: E402
from keras_pass.recipes import pretrain as pretrain_recipe  # noqa: E402
from tests.helpers import TINY_BACKBONE, make_market1501  # noqa: E402
from tests.kill_points import KILL_STATUS  # noqa: E402
from tests.recipes.tiny_pretrain_run import tiny_config as pretrain_config  # noqa: E402
from tests.recipes.tiny_finetune_run import tiny_config as finetune_config  # noqa: E402


def _flat(preset):
    return np.concatenate([w.ravel() for w in PASSBackbone.from_preset(preset).get_weights()])


def _kill(module, args, step):
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_PASS_KILL_AT_STEP": str(step)}
    result = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=env,
                            capture_output=True, text=True)
    assert result.returncode == KILL_STATUS, result.stderr[-2000:]


def _no_rng(model):
    return []


def _old_pretrain_stream(config, backbone):
    """Before: the data restarted at data epoch = the saved fit epoch."""
    stream = _real_pretrain_stream(config, backbone)
    state = io.read_json(os.path.join(config.output_dir, "checkpoint", checkpoint.LATEST, checkpoint.STATE_FILE))

    def from_step(step):
        return stream(state["epoch"] * stream.data_steps)

    from_step.data_steps = stream.data_steps
    return from_step


def _no_metric_restore(self, epoch, logs=None):
    self._epoch, self._epoch_start, self._pending_metrics = epoch, self.step, None


_real_pretrain_stream = pretrain_recipe._stream
PRETRAIN_VARIANTS = {
    "all fixes": [],
    "data stream restarts the epoch": [mock.patch.object(pretrain_recipe, "_stream", _old_pretrain_stream)],
    "seed generators not restored": [mock.patch.object(checkpoint, "rng_variables", _no_rng)],
    "epoch metrics not restored": [mock.patch.object(
        checkpoint.TrainingCheckpoint, "on_epoch_begin", _no_metric_restore)],
}

_real_make_train_dataset = finetune_recipe.make_train_dataset


def _old_finetune_stream(*args, first_batch=0, **kwargs):
    """Before: the sampler restarted at epoch = backup epoch and the
    augmentation counter at 0."""
    steps = 2  # tiny_finetune_run's steps_per_epoch
    return _real_make_train_dataset(*args, first_epoch=first_batch // steps, **kwargs)


FINETUNE_VARIANTS = {
    "all fixes": [],
    "data position and augmentation seeds restart": [
        mock.patch.object(finetune_recipe, "make_train_dataset", _old_finetune_stream)],
    "seed generators (drop path) not restored": [mock.patch.object(checkpoint, "rng_variables", _no_rng)],
}


def _resumes(killed, variants, run, preset_name, reference, start):
    rows = []
    for name, patches in variants.items():
        copy = killed + "-" + name.replace(" ", "_")
        shutil.copytree(killed, copy)
        for patch in patches:
            patch.start()
        try:
            losses = run(copy)
        finally:
            for patch in patches:
                patch.stop()
        distance = np.linalg.norm(_flat(os.path.join(copy, preset_name)) - reference["weights"])
        rows.append((name, distance / np.linalg.norm(reference["weights"] - start),
                     float(np.max(np.abs(np.asarray(losses) - reference["losses"])))))
    return rows


def pretraining_rows(out):
    data = os.path.join(out, "lup")
    write_unlabeled(data, num_identities=4, views=(2, 2), image_size=(64, 32), seed=5)

    def run(output_dir):
        pretrain_recipe.pretrain(pretrain_config(data, output_dir))
        return io.read_json(os.path.join(output_dir, "history.json"))["loss"]

    losses = run(os.path.join(out, "pretrain_reference"))
    import keras

    keras.utils.set_random_seed(0)
    start = np.concatenate([w.ravel() for w in pretrain_recipe.build_backbone(
        pretrain_config(data, out)).get_weights()])
    reference = {"weights": _flat(os.path.join(out, "pretrain_reference", "student_preset")), "losses": losses}
    killed = os.path.join(out, "pretrain_killed")
    # After step 3, before its epoch-end checkpoint: resumes from step 2 (mid fit epoch 1, mid data epoch 1).
    _kill("tests.recipes.tiny_pretrain_run", [data, killed], step=3)
    return _resumes(killed, PRETRAIN_VARIANTS, run, "student_preset", reference, start)


def finetuning_rows(out):
    market = os.path.join(out, "market")
    make_market1501(market, size=(64, 32))
    preset = os.path.join(out, "preset")
    PASSBackbone(**TINY_BACKBONE).save_to_preset(preset)

    def run(output_dir):
        finetune_recipe.finetune(finetune_config(market, preset, output_dir))
        return _csv_losses(output_dir)

    losses = run(os.path.join(out, "finetune_reference"))
    reference = {"weights": _flat(os.path.join(out, "finetune_reference", "backbone_preset")), "losses": losses}
    killed = os.path.join(out, "finetune_killed")
    _kill("tests.recipes.tiny_finetune_run", [market, preset, killed], step=3)  # epoch 2 of 3
    return _resumes(killed, FINETUNE_VARIANTS, run, "backbone_preset", reference, _flat(preset))


def _csv_losses(output_dir):
    import csv

    with open(os.path.join(output_dir, "history.csv")) as handle:
        return [float(row["loss"]) for row in csv.DictReader(handle)]


def main(out):
    import keras

    os.makedirs(out, exist_ok=True)
    lines = [f"backend: {keras.config.backend()}", "",
             "| run | resumed with | weight distance / training change | max epoch-loss difference |",
             "|---|---|---|---|"]
    for title, rows in (("pre-training", pretraining_rows(out)), ("fine-tuning", finetuning_rows(out))):
        lines += [f"| {title} | {name} | {relative:.2e} | {loss:.2e} |" for name, relative, loss in rows]
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1])
