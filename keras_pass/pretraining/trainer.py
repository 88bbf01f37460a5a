"""`PASSPretrainer`: student, EMA teacher and the part-aware loss in `fit`.

One step, as in the release (`PASS/main_pass.py`):
1. lr, weight decay, teacher momentum and temperature looked up from the
   optimizer's iteration counter (`compile(schedules=pass_schedules(...))`);
2. the teacher encodes the 2 global crops; the student encodes the global
   crops (one batch) and all local crops (one batch, each crop with the
   `[PART]` token of its region);
3. loss = `pass_loss(...)` with the current centers and teacher temperature;
4. gradients of the student, clipped per parameter (norm <= `clip_grad`);
5. AdamW step (decoupled, scheduled weight decay on ndim > 1 parameters;
   the heads' last layers not updated at all while frozen, their Adam
   state starting at the unfreeze step, as PyTorch's AdamW with grad None);
6. teacher <- m * teacher + (1 - m) * student, with the UPDATED student;
7. centers <- 0.9 * centers + 0.1 * mean teacher logits.

All but computing gradients and applying the optimizer is backend-agnostic
(`keras.ops`); those two are per backend in `keras_pass/backend/train_steps.py`.

`objective="dino"` is the paper's DINO baseline on the same trainer: one
CLS head, every crop (local crops with all `[PART]` tokens present, as a
global view) against the teacher's global CLS (`dino_loss_terms`), one
center. The backbone keeps its `[PART]` tokens (untrained by this loss), so
DINO and PASS backbones have the same architecture, features and
fine-tuning model. Feed it the multi-crop stream without region binding
(one region covering the whole image).
"""

import keras
from keras import ops

from keras_pass.models.heads import RELEASE_OUT_DIM, DINOHead
from keras_pass.backend import kernels, train_steps
from keras_pass.checkpoint import fit_resuming
from keras_pass.finite import NonFiniteLossGuard
from keras_pass.pretraining.loss import (
    collapse_metrics,
    dino_loss_terms,
    pass_loss_terms,
    update_centers,
)
from keras_pass.pretraining.optimizer import ScheduledAdamW
from keras_pass.pretraining.schedules import RELEASE_TEACHER_MOMENTUM


OBJECTIVES = ("pass", "dino")


def _state(model, name, value, shape=(), aggregation="none"):
    return model.add_weight(
        shape=shape,
        initializer=keras.initializers.Constant(value),
        trainable=False,
        dtype="float32",
        aggregation=aggregation,
        name=name,
    )


def _inner_optimizer(optimizer):
    """The optimizer itself, or the one inside a loss-scale wrapper."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def _views(crops):
    """(B, *view_dims, h, w, 3) -> (prod(view_dims) * B, h, w, 3), views major."""
    rank = len(crops.shape)
    order = (*range(1, rank - 3), 0, rank - 3, rank - 2, rank - 1)
    return ops.reshape(ops.transpose(crops, order), (-1, *crops.shape[-3:]))


def _on_all_rows(head, global_rows, local_rows):
    """`head` on global and local rows in one call (one weight gradient)."""
    num_global = ops.shape(global_rows)[0]
    logits = head(ops.concatenate([global_rows, local_rows], axis=0))
    return logits[:num_global], logits[num_global:]


@keras.saving.register_keras_serializable(package="keras_pass")
class PASSPretrainer(keras.Model):
    """PASS pre-training of a `PASSBackbone` with `model.fit(pass_dataset)`.

    Args:
        backbone: the student `PASSBackbone` (build it with
            `drop_path_rate=0.1` and `pos_embed_interpolation="always"` to
            match the release). The teacher is a copy without drop path.
        out_dim, head_hidden_dim, bottleneck_dim: DINO head sizes
            (65536, 2048, 256 in the release).
        teacher_temp, student_temp: tau_t (until `compile(schedules=...)`
            sets it per step) and tau_s.
        center_momentum: EMA momentum of the four centers.
        teacher_momentum: EMA momentum (until `compile(schedules=...)`
            sets it per step).
        clip_grad: per-parameter gradient norm limit; `None` disables.
        objective: "pass" (CLS + part tokens, `pass_loss_terms`) or
            "dino" (CLS only, `dino_loss_terms`).

    Data: dicts `{"global_crops": (B, 2, H, W, 3), "local_crops":
    (B, L, J, h, w, 3)}` as made by `make_pass_dataset`.
    """

    def __init__(
        self,
        backbone,
        out_dim=RELEASE_OUT_DIM,
        head_hidden_dim=2048,
        bottleneck_dim=256,
        teacher_temp=0.04,
        student_temp=0.1,
        center_momentum=0.9,
        teacher_momentum=RELEASE_TEACHER_MOMENTUM,
        clip_grad=3.0,
        objective="pass",
        **kwargs,
    ):
        if objective not in OBJECTIVES:
            raise ValueError(f"Expected objective in {OBJECTIVES}. Received: objective={objective!r}")
        super().__init__(**kwargs)
        self.objective = objective
        self.head_config = dict(out_dim=out_dim, hidden_dim=head_hidden_dim, bottleneck_dim=bottleneck_dim)
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.clip_grad = clip_grad
        self.num_parts = backbone.num_parts
        self.num_tokens = 1 if objective == "dino" else 1 + self.num_parts  # tokens with a head

        self.student_backbone = backbone
        self.student_heads = self._make_heads()
        teacher_config = {**backbone.get_config(), "drop_path_rate": 0.0, "name": "teacher_backbone"}
        self.teacher_backbone = backbone.__class__.from_config(teacher_config)
        self.teacher_heads = self._make_heads()
        for head in self.student_heads + self.teacher_heads:
            head.build((None, backbone.hidden_dim))
        self.teacher_backbone.set_weights(backbone.get_weights())
        for student, teacher in zip(self.student_heads, self.teacher_heads):
            teacher.set_weights(student.get_weights())
        self.teacher_backbone.trainable = False
        for head in self.teacher_heads:
            head.trainable = False

        # Averaged across replicas: each replica sees part of the batch.
        self.centers = _state(self, "centers", 0.0, (self.num_tokens, out_dim), "mean")
        # Set inside the step (same value on every replica).
        self.teacher_temp = _state(self, "teacher_temp", teacher_temp, aggregation="only_first_replica")
        self.teacher_momentum = _state(self, "teacher_momentum", teacher_momentum,
                                       aggregation="only_first_replica")
        self.trackers = {
            name: keras.metrics.Mean(name=name)
            for name in self._tracked_names()
        }
        self._ema_pairs = self._pair_student_with_teacher()
        self._schedules = None
        self.built = True  # every weight exists: load_weights works before fit

    def _tracked_names(self):
        losses = ("loss",) if self.objective == "dino" else ("loss", "cls_loss", "part_loss")
        return losses + ("teacher_entropy", "center_kl")

    def _make_heads(self):
        names = ["cls_head"] + [f"part{i + 1}_head" for i in range(self.num_tokens - 1)]
        return [DINOHead(**self.head_config, dtype="float32", name=name) for name in names]

    def _pair_student_with_teacher(self):
        pairs = []
        for student, teacher in [(self.student_backbone, self.teacher_backbone)] + list(
            zip(self.student_heads, self.teacher_heads)
        ):
            by_path = {v.path: v for v in teacher.weights}
            pairs += [(v, by_path[v.path]) for v in student.trainable_weights]
        return pairs

    @property
    def metrics(self):
        return list(self.trackers.values())

    # === Forward ===

    def _encode_globals(self, backbone, heads, global_crops, training):
        """Logits of the global views: (2, B, tokens, K), tokens = 1+L (PASS)
        or 1 (DINO)."""
        batch = ops.shape(global_crops)[0]
        outputs = backbone.encode(_views(global_crops), training=training)
        parts = ops.unstack(outputs["parts"], axis=1)[: self.num_tokens - 1]
        logits = [heads[0](outputs["cls"])] + [heads[1 + i](x) for i, x in enumerate(parts)]
        return ops.reshape(ops.stack(logits, axis=1), (2, batch, self.num_tokens, -1))

    def _dino_call(self, global_crops, local_crops, training):
        """Student CLS logits of the globals (2, B, K) and of all local crops
        (V, B, K), every crop with all `[PART]` tokens present."""
        batch = ops.shape(global_crops)[0]
        global_cls = self.student_backbone.encode(_views(global_crops), training=training)["cls"]
        local_cls = self.student_backbone.encode(_views(local_crops), training=training)["cls"]
        global_logits, local_logits = _on_all_rows(self.student_heads[0], global_cls, local_cls)
        num_local = local_crops.shape[1] * local_crops.shape[2]  # static: the loss counts terms
        return {"student_global": ops.reshape(global_logits, (2, batch, -1)),
                "student_local": ops.reshape(local_logits, (num_local, batch, global_logits.shape[-1]))}

    def call(self, data, training=False):
        """Student logits of the global views (2, B, 1+L, K) and of the local
        crops (L, J, B, 2, K). Each head runs once on all its rows, globals
        and locals together: one weight gradient per 65,536-wide layer."""
        global_crops, local_crops = data["global_crops"], data["local_crops"]
        if self.objective == "dino":
            return self._dino_call(global_crops, local_crops, training)
        batch = ops.shape(global_crops)[0]
        num_parts, crops_per_part = local_crops.shape[1:3]
        global_out = self.student_backbone.encode(_views(global_crops), training=training)
        # Locals in (region, crop, batch) order: rows [i*n, (i+1)*n) are region i.
        region = ops.repeat(ops.arange(num_parts, dtype="int32"), crops_per_part * batch)
        local_out = self.student_backbone.encode(
            _views(local_crops), part_index=region, training=training)
        cls_global, cls_local = _on_all_rows(self.student_heads[0], global_out["cls"], local_out["cls"])
        global_parts = ops.unstack(global_out["parts"], axis=1)
        local_parts = ops.split(local_out["parts"][:, 0], num_parts, axis=0)
        parts = [_on_all_rows(self.student_heads[1 + i], rows, local_rows)
                 for i, (rows, local_rows) in enumerate(zip(global_parts, local_parts))]
        global_logits = ops.stack([cls_global] + [logits for logits, _ in parts], axis=1)
        local_logits = ops.stack([cls_local, ops.concatenate([logits for _, logits in parts], axis=0)], axis=1)
        return {
            "student_global": ops.reshape(global_logits, (2, batch, 1 + self.num_parts, -1)),
            "student_local": ops.reshape(
                local_logits, (num_parts, crops_per_part, batch, 2, -1)),
        }

    def compute_pass_loss(self, data, training=True):
        """Returns (loss, aux) for one batch; no state is changed."""
        teacher_global = ops.stop_gradient(
            self._encode_globals(
                self.teacher_backbone, self.teacher_heads, data["global_crops"], False
            )
        )
        student = self(data, training=training)
        if self.objective == "dino":
            loss_sum, count = dino_loss_terms(
                teacher_global[:, :, 0], student["student_global"], student["student_local"],
                self.centers, self.teacher_temp, self.student_temp)
            return loss_sum / count, {"teacher_global": teacher_global}
        cls_sum, cls_count, part_sum, part_count = pass_loss_terms(
            teacher_global,
            student["student_global"],
            student["student_local"],
            self.centers,
            self.teacher_temp,
            self.student_temp,
        )
        loss = (cls_sum + part_sum) / (cls_count + part_count)
        aux = {
            "teacher_global": teacher_global,
            "cls_loss": cls_sum / cls_count,
            "part_loss": part_sum / part_count,
        }
        return loss, aux

    # === Update (backend-agnostic pieces of the train step) ===

    def apply_schedules(self):
        """Sets this step's scheduled values from the optimizer's iteration
        counter (inside the step: no host read); returns them for the logs."""
        if self._schedules is None:
            return {}
        values = self._schedules.at(self.optimizer.iterations)
        optimizer = _inner_optimizer(self.optimizer)
        optimizer.learning_rate.assign(values["lr"])
        optimizer.weight_decay_value.assign(values["weight_decay"])
        self.teacher_momentum.assign(values["teacher_momentum"])
        self.teacher_temp.assign(values["teacher_temp"])
        return values

    def prepare_gradients(self, grads):
        """Per-parameter clipping."""
        if self.clip_grad is None:
            return list(grads)
        prepared = []
        for grad in grads:
            norm = ops.sqrt(ops.sum(ops.square(ops.cast(grad, "float32"))))
            factor = ops.minimum(1.0, self.clip_grad / (norm + 1e-6))
            prepared.append(ops.multiply(grad, ops.cast(factor, grad.dtype)))
        return prepared

    def finish_step(self, loss, aux):
        """EMA teacher (after the optimizer step), centers, metrics."""
        momentum = self.teacher_momentum
        for student, teacher in self._ema_pairs:
            teacher.assign(kernels.moving_average(teacher, student, momentum))
        teacher_global = aux["teacher_global"]
        entropy, kl = collapse_metrics(teacher_global, self.centers, self.teacher_temp)
        self.centers.assign(update_centers(self.centers, teacher_global, self.center_momentum))
        values = {"loss": loss, "teacher_entropy": entropy, "center_kl": kl,
                  **{k: aux[k] for k in ("cls_loss", "part_loss") if k in aux}}
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def train_step(self, *args):
        return train_steps.train_step(self, *args)

    def fit(self, x=None, epochs=1, callbacks=None, steps_per_epoch=None, initial_epoch=0, **kwargs):
        """`keras.Model.fit` that stops on a non-finite loss and resumes from
        a `keras_pass.checkpoint.TrainingCheckpoint` in `callbacks`
        (`fit_resuming`: the saved step restored, an interrupted epoch
        finished first when `steps_per_epoch` is given).

        `x` may also be a function of the global step that returns the data
        stream from that step on (`recipes.pretrain` passes one): a resumed
        run then sees exactly the batches the uninterrupted one saw.
        """
        kwargs.setdefault("shuffle", False)  # datasets shuffle themselves
        callbacks = [NonFiniteLossGuard()] + list(callbacks or [])
        return fit_resuming(super().fit, self, x, epochs, steps_per_epoch, callbacks,
                            initial_epoch=initial_epoch, **kwargs)

    # === Compile and export ===

    def compile(self, optimizer=None, schedules=None, **kwargs):
        """Defaults to `ScheduledAdamW`; excludes biases and 1-D weights
        from weight decay (as the release) and builds the optimizer.

        `schedules` (a `PASSSchedules`, e.g. `pass_schedules(...)`): lr,
        weight decay, teacher momentum and temperature set inside every
        train step from the iteration counter, the heads' last layers frozen
        for its first `freeze_last_layer_steps`, and the four values added
        to the logs. Without it those values stay as they are.
        """
        optimizer = optimizer if optimizer is not None else ScheduledAdamW()
        super().compile(optimizer=optimizer, **kwargs)
        inner = _inner_optimizer(self.optimizer)
        inner.exclude_from_weight_decay(
            var_list=[v for v in self.trainable_variables if len(v.shape) <= 1]
        )
        self.optimizer.build(self.trainable_variables)
        self._schedules = schedules
        if schedules is not None:
            if not isinstance(inner, ScheduledAdamW):
                raise ValueError("Expected a ScheduledAdamW optimizer with schedules. "
                                 f"Received: optimizer={type(inner).__name__}")
            last_layers = [v for v in self.trainable_variables if v.path.endswith("last_layer")]
            inner.freeze(last_layers, schedules.freeze_last_layer_steps)

    def save_teacher_preset(self, preset_dir):
        """The teacher backbone as a preset: what users fine-tune from.

        Saved trainable: the teacher is frozen only inside this trainer, and
        a preset saved frozen would fine-tune nothing but the heads.
        """
        self.teacher_backbone.trainable = True
        try:
            self.teacher_backbone.save_to_preset(preset_dir)
        finally:
            self.teacher_backbone.trainable = False

    def get_config(self):
        return {
            **super().get_config(),
            "backbone": keras.saving.serialize_keras_object(self.student_backbone),
            "out_dim": self.head_config["out_dim"],
            "head_hidden_dim": self.head_config["hidden_dim"],
            "bottleneck_dim": self.head_config["bottleneck_dim"],
            "student_temp": self.student_temp,
            "center_momentum": self.center_momentum,
            "clip_grad": self.clip_grad,
            "objective": self.objective,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)
