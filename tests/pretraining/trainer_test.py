import os

import keras
import numpy as np
import pytest

from keras_pass.checkpoint import LATEST, WEIGHTS_FILE, TrainingCheckpoint
from keras_pass.errors import NonFiniteLossError
from keras_pass.models.backbone import PASSBackbone
from keras_pass.pretraining.optimizer import ScheduledAdamW
from keras_pass.pretraining.schedules import pass_schedules
from tests.helpers import repeated_dataset, tiny_crops, tiny_pretrainer, to_numpy
from tests.state_files import finish_fresh, start_fresh


def _values(variables):
    return [to_numpy(v).copy() for v in variables]


class TestPASSPretrainer:
    def setup_method(self):
        self.data = tiny_crops()

    def _fit(self, model, steps=1, callbacks=(), epochs=1, data=None):
        dataset = repeated_dataset(data or self.data, 4)
        return model.fit(dataset, steps_per_epoch=steps, epochs=epochs, callbacks=list(callbacks), verbose=0)

    def test_registered_for_serialization_and_config_round_trip(self):
        from keras_pass.pretraining.trainer import PASSPretrainer

        assert keras.saving.get_registered_object("keras_pass>PASSPretrainer") is PASSPretrainer
        model = tiny_pretrainer()
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
        assert isinstance(restored, PASSPretrainer)
        assert restored.get_config() == model.get_config()

    def test_teacher_starts_equal_and_is_not_trained(self):
        model = tiny_pretrainer()
        for student, teacher in model._ema_pairs:
            np.testing.assert_array_equal(to_numpy(student), to_numpy(teacher))
        assert not any(t.trainable for _, t in model._ema_pairs)
        assert model.teacher_backbone.drop_path_rate == 0.0
        trainable = {id(v) for v in model.trainable_variables}
        assert trainable == {id(s) for s, _ in model._ema_pairs}

    def test_one_step_ema_and_center_updates(self):
        model = tiny_pretrainer()
        model.compile()
        model.teacher_momentum.assign(0.9)  # visible change in one step
        teacher_before = _values(t for _, t in model._ema_pairs)
        teacher_logits = to_numpy(
            model._encode_globals(model.teacher_backbone, model.teacher_heads, self.data["global_crops"], False)
        )
        history = self._fit(model, steps=1)
        assert set(history.history) == {"loss", "cls_loss", "part_loss", "teacher_entropy", "center_kl"}
        changed = 0
        for (student, teacher), before in zip(model._ema_pairs, teacher_before):
            expected = 0.9 * before + 0.1 * to_numpy(student)
            np.testing.assert_allclose(to_numpy(teacher), expected, atol=1e-6, rtol=0)
            changed += not np.allclose(to_numpy(teacher), before, atol=1e-7)
        assert changed > len(teacher_before) // 2  # the teacher really moved
        np.testing.assert_allclose(
            to_numpy(model.centers), 0.1 * teacher_logits.mean(axis=(0, 1)), atol=1e-6
        )

    def test_gradient_clipping_is_per_parameter(self):
        model = tiny_pretrainer(clip_grad=3.0)
        rng = np.random.default_rng(0)
        grads = [rng.normal(scale=s, size=v.shape).astype("float32")
                 for v, s in zip(model.trainable_variables, np.geomspace(1e-3, 10, len(model.trainable_variables)))]
        clipped = [to_numpy(g) for g in model.prepare_gradients(grads)]
        for grad, out in zip(grads, clipped):
            norm = np.linalg.norm(grad)
            expected = grad * min(1.0, 3.0 / (norm + 1e-6))
            np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-7)
        assert any(np.linalg.norm(g) > 3 for g in grads) and any(np.linalg.norm(g) < 3 for g in grads)

    def test_frozen_last_layer_is_not_updated_and_weight_decay_skips_1d(self):
        model = tiny_pretrainer()
        model.compile(schedules=pass_schedules(epochs=2, steps_per_epoch=2, batch_size=256, warmup_epochs=0))
        last = [v for v in model.trainable_variables if v.path.endswith("last_layer")]
        one_d = [v for v in model.trainable_variables if len(v.shape) == 1]
        assert len(last) == 4 and one_d
        before = _values(last)
        others = _values(model.student_backbone.trainable_variables)
        self._fit(model, steps=2)
        for variable, value in zip(last, before):  # no Adam step and no decay (PyTorch: grad None)
            np.testing.assert_array_equal(to_numpy(variable), value)
        assert all(not np.array_equal(to_numpy(v), b)
                   for v, b in zip(model.student_backbone.trainable_variables, others))
        optimizer = model.optimizer
        assert all(not optimizer._use_weight_decay(v) for v in one_d)
        assert optimizer._use_weight_decay(model.student_backbone.embeddings.cls_token)

    @pytest.mark.parametrize("frozen_steps", [20, 200])
    def test_first_unfrozen_step_moves_each_element_by_about_lr(self, frozen_steps):
        """The release's AdamW starts a frozen layer's moments and bias
        correction at the unfreeze step: its first step is ~lr per element."""
        model = tiny_pretrainer()
        schedules = pass_schedules(epochs=2, steps_per_epoch=frozen_steps, batch_size=256, base_lr=1e-3,
                                   warmup_epochs=0)
        model.compile(schedules=schedules)
        last = [v for v in model.trainable_variables if v.path.endswith("last_layer")]
        self._fit(model, steps=frozen_steps)
        before = _values(last)
        self._fit(model, steps=1)
        lr = schedules.lr[frozen_steps]
        wd = schedules.weight_decay[frozen_steps]
        for variable, value in zip(last, before):
            adam_move = np.abs(to_numpy(variable) - value * (1 - lr * wd))
            assert np.median(adam_move) / lr == pytest.approx(1.0, rel=0.05)

    def test_schedules_drive_the_ema(self):
        model = tiny_pretrainer()
        model.compile(schedules=pass_schedules(epochs=1, steps_per_epoch=4, batch_size=256,
                                               warmup_epochs=0, teacher_momentum=(0.5, 1.0)))
        self._fit(model, steps=3)
        # Values of steps 0, 1, 2: the last one is cosine(2/4).
        np.testing.assert_allclose(float(to_numpy(model.teacher_momentum)), 0.75, atol=1e-6)

    @pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
    def test_mixed_precision_stays_finite(self, policy):
        if policy == "mixed_float16" and keras.config.backend() == "jax":
            pytest.skip("XLA:CPU has no float16 dot with float32 accumulation (GPU only)")
        model = tiny_pretrainer(dtype=policy)
        model.compile()
        history = self._fit(model, steps=3)
        assert np.all(np.isfinite(history.history["loss"]))
        assert model.student_backbone.compute_dtype == policy.split("_")[1]
        assert model.centers.dtype == "float32"

    def test_non_finite_loss_stops_and_keeps_last_checkpoint(self, tmp_path):
        model = tiny_pretrainer()
        model.compile()
        checkpoint = TrainingCheckpoint(tmp_path / "ckpt", save_freq=1)
        self._fit(model, steps=2, callbacks=[checkpoint])
        weights_path = tmp_path / "ckpt" / LATEST / WEIGHTS_FILE
        saved = open(weights_path, "rb").read()
        bad = {k: np.full_like(v, np.nan) for k, v in self.data.items()}
        with pytest.raises(NonFiniteLossError, match="untouched"):
            self._fit(model, steps=2, callbacks=[checkpoint], data=bad, epochs=3)
        assert open(weights_path, "rb").read() == saved
        assert [f for f in os.listdir(tmp_path / "ckpt") if f.startswith(".tmp")] == []

    def test_teacher_preset_export(self, tmp_path):
        model = tiny_pretrainer()
        model.teacher_backbone.embeddings.cls_pos.assign(np.ones((1, 32), "float32"))
        model.save_teacher_preset(str(tmp_path / "teacher"))
        restored = PASSBackbone.from_preset(str(tmp_path / "teacher"))
        np.testing.assert_array_equal(to_numpy(restored.embeddings.cls_pos), np.ones((1, 32)))
        assert restored.drop_path_rate == 0.0
        assert restored.trainable and not model.teacher_backbone.trainable  # fine-tunable preset


def test_loss_falls_on_a_fixed_tiny_set(tmp_path):
    """`model.fit(make_pass_dataset(...))` on 8 generated images, one fixed
    batch of crops, 40 steps: the student learns. Its part of the loss
    (loss - teacher entropy, the KL to the teacher) and the loss end below
    those of the same run from the same initial weights with no update
    (lr 0: only the centers move). The
    total loss is not compared with its own start: centers begin at zero,
    so the teacher's entropy first moves with the centers, in a direction
    that depends on the initial weights."""
    import tensorflow as tf

    from keras_pass.data.synthetic import write_unlabeled
    from keras_pass.pretraining.data import make_pass_dataset

    write_unlabeled(str(tmp_path), num_identities=4, views=(2, 2), image_size=(64, 32), seed=5)
    keras.utils.set_random_seed(0)
    crops = make_pass_dataset(str(tmp_path), 8, global_size=(64, 32), local_size=(32, 16),
                              local_crops_per_part=2, view_augmentations="none", seed=0, shuffle=False)
    fixed = tf.data.Dataset.from_tensors(next(iter(crops))).repeat()
    model = tiny_pretrainer()
    initial = model.get_weights()
    model.compile(optimizer=ScheduledAdamW(learning_rate=1e-3))
    history = model.fit(fixed, epochs=40, steps_per_epoch=1, verbose=0).history  # one step per epoch
    control = tiny_pretrainer()
    control.set_weights(initial)
    control.compile(optimizer=ScheduledAdamW(learning_rate=0.0))
    controlled = control.fit(fixed, epochs=40, steps_per_epoch=1, verbose=0).history
    loss, without_updates = np.array(history["loss"]), np.array(controlled["loss"])
    student_part = loss - np.array(history["teacher_entropy"])
    control_student_part = without_updates - np.array(controlled["teacher_entropy"])
    assert np.all(np.isfinite(loss))
    assert loss[-5:].mean() < 0.85 * without_updates[-5:].mean(), (loss, without_updates)
    assert student_part[-5:].mean() < 0.5 * control_student_part[-5:].mean(), (student_part, control_student_part)


def test_scheduled_adamw_steps_equal_keras_adamw():
    """ScheduledAdamW (one XLA kernel per variable on TensorFlow) takes the
    same steps as Keras' AdamW with the same decoupled weight decay."""
    rng = np.random.default_rng(0)
    start = [rng.normal(size=shape).astype("float32") for shape in [(3, 4), (4,)]]
    grads = [[rng.normal(size=w.shape).astype("float32") for w in start] for _ in range(3)]
    results = []
    for optimizer in (ScheduledAdamW(learning_rate=0.05, weight_decay=0.1),
                      keras.optimizers.AdamW(learning_rate=0.05, weight_decay=0.1)):
        variables = [keras.Variable(w) for w in start]
        for step_grads in grads:
            optimizer.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in step_grads], variables))
        results.append([to_numpy(v) for v in variables])
    for ours, reference, initial in zip(*results, start):
        np.testing.assert_allclose(ours, reference, atol=1e-6)
        assert np.abs(ours - initial).max() > 0.05


class TestDINOObjective:
    def setup_method(self):
        self.data = tiny_crops(num_parts=1, crops_per_part=3)

    def test_loss_wiring_matches_the_reference_on_each_crop(self):
        from tests.pretraining.loss_test import _reference_dino_loss

        model = tiny_pretrainer(objective="dino")
        assert len(model.student_heads) == len(model.teacher_heads) == 1
        assert tuple(model.centers.shape) == (1, model.head_config["out_dim"])
        rng = np.random.default_rng(0)
        model.centers.assign(rng.normal(scale=0.1, size=model.centers.shape).astype("float32"))
        loss, _ = model.compute_pass_loss(self.data, training=False)

        def cls_logits(backbone, head, crops):
            return to_numpy(head(backbone.encode(crops)["cls"]))

        globals_, locals_ = self.data["global_crops"], self.data["local_crops"]
        teacher = [cls_logits(model.teacher_backbone, model.teacher_heads[0], globals_[:, g]) for g in range(2)]
        student = [cls_logits(model.student_backbone, model.student_heads[0], globals_[:, g]) for g in range(2)]
        student += [cls_logits(model.student_backbone, model.student_heads[0], locals_[:, 0, j]) for j in range(3)]
        expected, terms = _reference_dino_loss(np.stack(teacher), student, to_numpy(model.centers),
                                               float(to_numpy(model.teacher_temp)), model.student_temp)
        assert terms == 8
        np.testing.assert_allclose(to_numpy(loss), expected, rtol=1e-4, atol=1e-5)

    def test_fit_steps_the_cls_head_only_and_round_trips(self):
        model = tiny_pretrainer(objective="dino")
        model.compile()
        history = repeated_dataset(self.data, 4)
        history = model.fit(history, steps_per_epoch=2, epochs=1, verbose=0)
        assert set(history.history) == {"loss", "teacher_entropy", "center_kl"}
        assert np.isfinite(history.history["loss"][0])
        assert np.abs(to_numpy(model.centers)).sum() > 0
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
        assert restored.objective == "dino" and len(restored.student_heads) == 1

    def test_unknown_objective_is_refused(self):
        with pytest.raises(ValueError, match="objective"):
            tiny_pretrainer(objective="ibot")


@pytest.mark.slow
@pytest.mark.skipif(keras.config.backend() == "jax",
                    reason="JAX: tests/backend/processes_test.py compares 1 device, "
                           "1 process x 2 devices and 2 processes")
def test_two_device_data_parallel_matches_one_device(tmp_path):
    """Same global batch of 4 on 1 and 2 (simulated) devices; after 4 steps the
    loss, student, teacher, centers and optimizer state agree to 1e-5 (float
    reduction order differs between the runs). No drop path: TF replicas draw
    their own random masks, so RNG streams differ from one device. The two
    devices need a fresh process (TensorFlow's logical devices are set before
    it starts); the one-device run is this process's, meanwhile."""
    from tests.pretraining.tiny_pretraining_run import run

    two = start_fresh("tests.pretraining.tiny_pretraining_run", (tmp_path / "two.npz", "--epochs", 1,
                                                                 "--devices", 2, "--drop-path-rate", 0))
    run(tmp_path / "one.npz", epochs=1, drop_path_rate=0.0)
    finish_fresh(two)
    one, two = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    assert int(one["replicas"]) == 1 and int(two["replicas"]) == 2  # really two replicas
    assert sorted(one.files) == sorted(two.files)
    for key in set(one.files) - {"replicas"}:
        np.testing.assert_allclose(one[key], two[key], atol=1e-5, rtol=0, err_msg=key)
