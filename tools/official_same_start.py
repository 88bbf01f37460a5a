"""keras-pass and the authors' PASS from the SAME initial weights, in lockstep
(`tools/official_on_demo.py --same-start`; issue 26 item 6).

The release's initial student (its own init, the qkv kernels re-drawn with
`--qkv-init-std`) is converted with keras-pass's converter
(`checkpoint_filter_fn` for the backbone, the heads mapped here) and saved
as a preset; keras-pass's `PASSPretrainer` is built from it as the demo's
pre-training recipe builds it (`recipes.demo._pretrain_config` with that
preset, `recipes.pretrain.build_backbone`, `pass_schedules`), with the same
heads for student and teacher. Then, every step, ONE multi-crop batch of
`make_pass_dataset` (the recipe's settings) goes to the release's
`train_one_epoch` (one step, its schedules indexed by the global step) and
to keras-pass's compiled train step. Both runs are deterministic (no drop
path): the only differences are the implementations.

Logged every `--log-every` steps for both (`lockstep.json`):
- token cosines: mean over a fixed set of query + gallery images of
  cos(CLS, PART_i) and cos(PART_i, PART_j) of the teacher backbone's
  final-norm outputs (what the issue's 0.93-0.99 vs 0.75-0.88 measures);
- the loss on a fixed batch (the first) split into its CLS term and each
  PART term, from the same transcription of the release's loops for both
  (`loss_split`), with the release's `DINOLoss` total beside it as a check;
- the distance between the two teachers: relative L2 of the backbone
  weights and the mean cosine between the two implementations' CLS features.
Before the run, one-step evidence from the identical start: the gradient of
every parameter on the first batch, and the update of the first step.

TensorFlow backend only (the compiled step is called directly).
"""

import contextlib
import copy
import dataclasses
import io as std_io
import os
import types

import numpy as np

TOKENS = ("cls", "pt1", "pt2", "pt3")
_TORCH_MLP = (0, 2, 4)  # Linear layers of the release's head Sequential (GELU between)


def _head_name(token_index):
    return "cls_head" if token_index == 0 else f"part{token_index}_head"


def torch_to_keras(state_dict):
    """A `MultiCropWrapper` state dict (or its gradients, same keys) ->
    `{keras path: float32 array}` for the backbone and the 4 heads."""
    from keras_pass.models.convert import checkpoint_filter_fn

    # copies: a tensor's .numpy() shares its memory, and the optimizer updates in place
    arrays = {k: np.array(v.detach().cpu().numpy() if hasattr(v, "detach") else v) for k, v in state_dict.items()}
    weights, _ = checkpoint_filter_fn({k[len("backbone."):]: v for k, v in arrays.items() if k.startswith("backbone.")})
    for t, token in enumerate(TOKENS):
        head = _head_name(t)
        for i, index in enumerate(_TORCH_MLP):
            weights[f"{head}/mlp_{i}/kernel"] = arrays[f"head.mlp_{token}.{index}.weight"].T
            weights[f"{head}/mlp_{i}/bias"] = arrays[f"head.mlp_{token}.{index}.bias"]
        weights[f"{head}/last_layer"] = arrays[f"head.last_layer_{token}.weight_v"].T
    return weights


def _keras_weights(backbone, heads):
    return {v.path: np.asarray(v.numpy()) for layer in [backbone, *heads] for v in layer.weights}


def _set_heads(heads, weights):
    for head in heads:
        for variable in head.weights:
            variable.assign(weights[variable.path])


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def loss_split(teacher_global, student_global, student_local, centers, teacher_temp, student_temp=0.1):
    """The release's loops (`DINOLoss.forward`) in numpy, split by token.

    teacher_global, student_global: (2, B, 4, K); student_local (L, J, B,
    2, K) (region, crop, batch, [CLS, PART_i]); centers (4, K). Returns the
    mean CE of the CLS terms (every view but the teacher's own), of each
    PART_i's terms (globals and region i's local crops) and their flat
    average (the loss: 20 + 3 x 8 terms)."""
    q = np.exp(_log_softmax((teacher_global - centers) / teacher_temp))
    log_global, log_local = _log_softmax(student_global / student_temp), _log_softmax(student_local / student_temp)

    def ce(target, log_p):
        return float(-(target * log_p).sum(-1).mean())

    num_parts, crops = student_local.shape[:2]
    sums = {}
    for t in range(1 + num_parts):
        students = [log_global[v, :, t] for v in range(2)]
        if t == 0:
            students += [log_local[i, j, :, 0] for i in range(num_parts) for j in range(crops)]
        else:
            students += [log_local[t - 1, j, :, 1] for j in range(crops)]
        sums[t] = [ce(q[g, :, t], students[v]) for g in range(2) for v in range(len(students)) if v != g]
    terms = [term for t in sums for term in sums[t]]
    split = {("cls" if t == 0 else f"part{t}"): float(np.mean(values)) for t, values in sums.items()}
    return {**split, "total": float(np.mean(terms))}


def token_cosines(cls, parts):
    """Mean over images of cos(CLS, PART_i) and cos(PART_i, PART_j)."""
    tokens = [cls] + [parts[:, i] for i in range(parts.shape[1])]
    tokens = [t / np.linalg.norm(t, axis=-1, keepdims=True) for t in tokens]
    names = ["cls"] + [f"part{i + 1}" for i in range(parts.shape[1])]
    return {f"{names[a]}-{names[b]}": float((tokens[a] * tokens[b]).sum(-1).mean())
            for a in range(len(tokens)) for b in range(a + 1, len(tokens))}


def eval_images(demo_dir, image_size, count):
    """Up to `count` query + gallery images, evenly spaced, ImageNet-normalised NHWC."""
    from keras_pass.reid.data import load_images
    from keras_pass.reid.datasets import market1501

    dataset = market1501(os.path.join(demo_dir, "data", "market1501"))
    paths = list(dataset.query.paths) + list(dataset.gallery.paths)
    paths = [paths[i] for i in np.linspace(0, len(paths) - 1, min(count, len(paths))).astype(int)]
    images = load_images(paths, image_size)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    return ((images - mean) / std).astype("float32")


class TorchSide:
    """The release's networks, loss, optimizer and schedules; one step of
    its `train_one_epoch` at a time."""

    def __init__(self, repo, config, seed, qkv_init_std):
        from official_on_demo import _DDP, _modules, _networks

        self.torch, self.main_pass, self.utils, vits = _modules(repo)
        torch = self.torch
        torch.manual_seed(seed)
        pretrain = config["pretrain"]
        self.student, self.teacher = _networks(torch, self.utils, vits, config["backbone"], pretrain, qkv_init_std)
        epochs, steps, batch = pretrain["epochs"], pretrain["steps_per_epoch"], pretrain["batch_size"]
        self.loss = self.main_pass.DINOLoss(pretrain["out_dim"], 11, pretrain["warmup_teacher_temp"],
                                            pretrain["teacher_temp"], 0, epochs)
        # One "epoch" per step below: the per-epoch temperature repeated per step.
        self.loss.teacher_temp_schedule = np.repeat(self.loss.teacher_temp_schedule, steps)
        self.optimizer = torch.optim.AdamW(self.utils.get_params_groups(self.student))
        self.lr = self.utils.cosine_scheduler(pretrain["base_lr"] * batch / 256, 1e-6, epochs, steps,
                                              warmup_epochs=pretrain["warmup_epochs"])
        self.weight_decay = self.utils.cosine_scheduler(0.04, 0.4, epochs, steps)
        self.momentum = self.utils.cosine_scheduler(*pretrain["teacher_momentum"], epochs, steps)
        self.args = types.SimpleNamespace(epochs=epochs * steps, clip_grad=3.0,
                                          freeze_last_layer=pretrain["freeze_last_layer_epochs"] * steps)
        self.student_ddp = _DDP(torch, self.student)

    def views(self, batch):
        from official_on_demo import batch_views

        return [self.torch.from_numpy(v) for v in batch_views(batch)]

    def step(self, step, batch):
        """Global step `step` of `train_one_epoch` on one batch (a one-batch
        loader with epoch = step: the schedules' index is the step)."""
        from official_on_demo import _on_cpu

        with _on_cpu(self.torch, self.utils), contextlib.redirect_stdout(std_io.StringIO()):
            stats = self.main_pass.train_one_epoch(
                self.student_ddp, self.teacher, self.teacher, self.loss, [(self.views(batch), None)],
                self.optimizer, self.lr, self.weight_decay, self.momentum, step, None, self.args)
        return stats["loss"]

    def outputs(self, batch, step):
        """(teacher_global, student_global, student_local, centers, temp) in
        keras-pass's layout, and the release's `DINOLoss` total on them."""
        torch = self.torch
        with torch.no_grad():
            views = self.views(batch)
            teacher = self.teacher(views[:2])
            student_g, *student_parts = self.student(views)
            total = copy.deepcopy(self.loss)(teacher, student_g, *student_parts, step).item()
        size = batch["global_crops"].shape[0]

        def globals_(tokens):
            return np.stack([t.numpy() for t in tokens], axis=1).reshape(2, size, len(tokens), -1)

        local = np.stack([np.stack([c.numpy(), p.numpy()], axis=1).reshape(-1, size, 2, c.shape[-1])
                          for c, p in student_parts])
        centers = np.concatenate([getattr(self.loss, f"center_{t}").numpy() for t in TOKENS])
        return (globals_(teacher), globals_(student_g), local, centers, self.loss.teacher_temp_schedule[step]), total

    def tokens(self, images):
        with self.torch.no_grad():
            cls, *parts = self.teacher.backbone(self.torch.from_numpy(images.transpose(0, 3, 1, 2).copy()), None)
        return cls.numpy(), np.stack([p.numpy() for p in parts], axis=1)

    def gradients(self, batch):
        """Gradients of the loss on `batch` (no step, centers unchanged)."""
        self.student.zero_grad()
        views = self.views(batch)
        loss = copy.deepcopy(self.loss)(self.teacher(views[:2]), *self.student(views), 0)
        loss.backward()
        grads = torch_to_keras({n: p.grad for n, p in self.student.named_parameters() if p.grad is not None})
        self.student.zero_grad()
        return float(loss.item()), grads


class KerasSide:
    """keras-pass's PASSPretrainer from the converted initial weights, built
    as the demo's recipe builds it."""

    def __init__(self, config, demo_dir, seed, preset, head_weights, output_dir):
        import keras

        from keras_pass.pretraining.schedules import pass_schedules
        from keras_pass.pretraining.trainer import PASSPretrainer
        from keras_pass.recipes.demo import _pretrain_config
        from keras_pass.recipes.pretrain import build_backbone

        if keras.config.backend() != "tensorflow":
            raise ValueError(f"Expected KERAS_BACKEND=tensorflow for --same-start. Received: {keras.config.backend()}")
        unlabeled = os.path.join(demo_dir, "data", "luperson")
        cfg = dataclasses.replace(_pretrain_config(config, unlabeled, output_dir, seed), preset=preset)
        self.config = cfg
        keras.utils.set_random_seed(cfg.seed)
        model = PASSPretrainer(
            build_backbone(cfg), out_dim=cfg.out_dim, head_hidden_dim=cfg.head_hidden_dim,
            bottleneck_dim=cfg.bottleneck_dim, teacher_temp=cfg.warmup_teacher_temp,
            teacher_momentum=cfg.teacher_momentum[0], clip_grad=cfg.clip_grad, objective="pass")
        _set_heads(model.student_heads, head_weights)
        _set_heads(model.teacher_heads, head_weights)
        steps = cfg.steps_per_epoch
        model.compile(schedules=pass_schedules(
            cfg.epochs, steps, cfg.batch_size, base_lr=cfg.base_lr, min_lr=cfg.min_lr,
            warmup_epochs=cfg.warmup_epochs, weight_decay=cfg.weight_decay,
            teacher_momentum=cfg.teacher_momentum, teacher_temp=cfg.teacher_temp,
            warmup_teacher_temp=cfg.warmup_teacher_temp,
            warmup_teacher_temp_epochs=cfg.warmup_teacher_temp_epochs,
            freeze_last_layer_epochs=cfg.freeze_last_layer_epochs), jit_compile="auto")
        self.model = model
        model.make_train_function()

    def train_function(self, iterator):
        return self.model.train_function(iterator)

    def dataset(self, data_seed):
        from keras_pass.pretraining.data import make_pass_dataset
        from keras_pass.recipes.pretrain import crop_regions

        cfg = self.config
        return make_pass_dataset(
            cfg.data, cfg.batch_size, global_size=cfg.image_size, local_size=cfg.local_size,
            global_scale=cfg.global_scale, view_augmentations=cfg.view_augmentations, seed=data_seed,
            repeat=True, **crop_regions(cfg, self.model.num_parts))

    def step(self, batch):
        self.model.reset_metrics()  # the logged loss: this step's, not a running mean
        return float(self.train_function(iter([batch]))["loss"])

    def outputs(self, batch):
        model = self.model
        teacher = model._encode_globals(model.teacher_backbone, model.teacher_heads, batch["global_crops"], False)
        student = model(batch, training=False)
        return tuple(np.asarray(x) for x in (teacher, student["student_global"], student["student_local"],
                                              model.centers.numpy())) + (float(model.teacher_temp.numpy()),)

    def tokens(self, images):
        out = self.model.teacher_backbone.encode(images)
        return np.asarray(out["cls"]), np.asarray(out["parts"])

    def gradients(self, batch):
        import tensorflow as tf

        model = self.model
        with tf.GradientTape() as tape:
            loss, _ = model.compute_pass_loss(batch, training=True)
        grads = tape.gradient(loss, model.trainable_variables)
        return float(loss), {v.path: np.asarray(g) for v, g in zip(model.trainable_variables, grads)}

    def student_weights(self):
        return _keras_weights(self.model.student_backbone, self.model.student_heads)

    def teacher_weights(self):
        return _keras_weights(self.model.teacher_backbone, self.model.teacher_heads)


def relative_differences(ours, theirs):
    """{path: ||ours - theirs|| / ||theirs||} over the paths of `theirs`."""
    return {k: float(np.linalg.norm(ours[k] - v) / max(np.linalg.norm(v), 1e-30)) for k, v in theirs.items()}


def _global_relative(ours, theirs, prefix_filter=lambda k: True):
    keys = [k for k in theirs if prefix_filter(k)]
    diff = np.sqrt(sum(np.sum((ours[k] - theirs[k]) ** 2) for k in keys))
    return float(diff / np.sqrt(sum(np.sum(theirs[k] ** 2) for k in keys)))


def _is_backbone(path):
    return "_head/" not in path


def snapshot(step, keras_side, torch_side, fixed_batch, images, log_step):
    """Everything logged at one step, for both implementations."""
    keras_tokens, torch_tokens = keras_side.tokens(images), torch_side.tokens(images)
    torch_outputs, release_total = torch_side.outputs(fixed_batch, log_step)
    cls_k, cls_t = (t[0] / np.linalg.norm(t[0], axis=-1, keepdims=True) for t in (keras_tokens, torch_tokens))
    return {
        "step": step,
        "keras": {"cosines": token_cosines(*keras_tokens), "loss": loss_split(*keras_side.outputs(fixed_batch))},
        "release": {"cosines": token_cosines(*torch_tokens), "loss": loss_split(*torch_outputs),
                    "DINOLoss_total": release_total},
        "teacher_backbone_rel_diff": _global_relative(keras_side.teacher_weights(),
                                                      torch_to_keras(torch_side.teacher.state_dict()), _is_backbone),
        "cls_feature_cosine_between": float((cls_k * cls_t).sum(-1).mean()),
    }


def one_step_evidence(keras_side, torch_side, first, second):
    """From the identical start: the loss and every parameter's gradient of
    both on the first batch; both take step 0 on it (lr 0 after the warm-up
    from 0: only the Adam moments and the centers move) and step 1 on the
    second batch, whose update of every parameter is compared. Leaves both
    after step 1."""
    keras_loss, keras_grads = keras_side.gradients(first)
    torch_loss, torch_grads = torch_side.gradients(first)
    start_diff = _global_relative(keras_side.student_weights(), torch_to_keras(torch_side.student.state_dict()))
    keras_side.step(first)
    torch_side.step(0, first)
    before_k, before_t = keras_side.student_weights(), torch_to_keras(torch_side.student.state_dict())
    centers_k = keras_side.model.centers.numpy()
    centers_t = np.concatenate([getattr(torch_side.loss, f"center_{t}").numpy() for t in TOKENS])
    keras_side.step(second)
    torch_side.step(1, second)
    after_k, after_t = keras_side.student_weights(), torch_to_keras(torch_side.student.state_dict())
    update_k = {k: after_k[k] - before_k[k] for k in before_t}
    update_t = {k: after_t[k] - before_t[k] for k in before_t}
    return {
        "loss": {"keras": keras_loss, "release": torch_loss},
        "start_weights_rel_diff": start_diff,
        "after_step0_weights_rel_diff": _global_relative(before_k, before_t),
        "after_step0_rel_diff": relative_differences(before_k, before_t),
        "after_step0_centers_rel_diff": float(np.linalg.norm(centers_k - centers_t) / np.linalg.norm(centers_t)),
        "grad_rel_diff": relative_differences(keras_grads, torch_grads),
        "update_rel_diff": relative_differences(update_k, update_t),
        "grad_norm_release": {k: float(np.linalg.norm(v)) for k, v in torch_grads.items()},
        "grad_rms_release": {k: float(np.sqrt(np.mean(v ** 2))) for k, v in torch_grads.items()},
        "update_norm_release": {k: float(np.linalg.norm(v)) for k, v in update_t.items()},
        "update_norm_keras": {k: float(np.linalg.norm(v)) for k, v in update_k.items()},
    }


def worst(differences, count=6):
    return sorted(differences.items(), key=lambda kv: -kv[1])[:count]


def _line(entry):
    parts = []
    for name in ("keras", "release"):
        side = entry[name]
        cos, loss = side["cosines"], side["loss"]
        parts.append(f"{name[:7]:7s} cos(CLS,P1..3) {cos['cls-part1']:.3f}/{cos['cls-part2']:.3f}/"
                     f"{cos['cls-part3']:.3f} P1-P2 {cos['part1-part2']:.3f} loss CLS {loss['cls']:.3f} "
                     f"P1..3 {loss['part1']:.3f}/{loss['part2']:.3f}/{loss['part3']:.3f}")
    return (f"step {entry['step']:4d} | " + " | ".join(parts)
            + f" | teacher diff {entry['teacher_backbone_rel_diff']:.3f} cos(CLS_k,CLS_r) "
              f"{entry['cls_feature_cosine_between']:.3f}")


def run(args, config, seed, output_dir):
    """The lockstep run; writes `lockstep.json` and both final teachers'
    presets to `output_dir`, and returns the record."""
    import time

    from keras_pass import io
    from keras_pass.models.convert import convert_checkpoint

    torch_side = TorchSide(args.official_repo, config, seed, args.qkv_init_std)
    torch_side.torch.set_num_threads(args.threads)
    initial = torch_side.student.state_dict()
    backbone_config, size = config["backbone"], config["image_size"]

    def convert(state_dict, name):
        backbone = {k[len("backbone."):]: v for k, v in state_dict.items() if k.startswith("backbone.")}
        preset = os.path.join(output_dir, name)
        convert_checkpoint(backbone, preset, arch="vit_tiny", image_size=size,
                           stride=backbone_config["patch_size"], **backbone_config)
        return preset

    keras_side = KerasSide(config, args.demo_dir, seed, convert(initial, "initial_preset"),
                           torch_to_keras(initial), os.path.join(output_dir, "keras_run"))
    data_seed = seed if args.data_seed is None else args.data_seed
    batches = keras_side.dataset(data_seed).as_numpy_iterator()
    pretrain = config["pretrain"]
    total = pretrain["epochs"] * pretrain["steps_per_epoch"]
    steps = min(args.steps or total, total)
    images = eval_images(args.demo_dir, size, args.eval_images)
    fixed = next(batches)  # step 0's batch, and the fixed batch of the loss split

    started = time.time()
    log = [snapshot(0, keras_side, torch_side, fixed, images, 0)]
    print(_line(log[-1]), flush=True)
    evidence = one_step_evidence(keras_side, torch_side, fixed, next(batches))
    print(f"from the same weights: loss keras {evidence['loss']['keras']:.6f} release "
          f"{evidence['loss']['release']:.6f}; weights rel diff at start {evidence['start_weights_rel_diff']:.1e}, "
          f"after step 0 {evidence['after_step0_weights_rel_diff']:.1e}; centers after step 0 "
          f"{evidence['after_step0_centers_rel_diff']:.1e}")
    for title, key in (("weight rel diffs after step 0", "after_step0_rel_diff"),
                       ("gradient rel diffs", "grad_rel_diff"), ("step-1 update rel diffs", "update_rel_diff")):
        print(f"  largest {title}:", ", ".join(f"{k} {v:.1e}" for k, v in worst(evidence[key])))
    losses = {"keras": [], "release": []}
    for step in range(2, steps):
        batch = next(batches)
        losses["keras"].append(keras_side.step(batch))
        losses["release"].append(torch_side.step(step, batch))
        if (step + 1) % args.log_every == 0 or step == steps - 1:
            log.append(snapshot(step + 1, keras_side, torch_side, fixed, images, min(step, total - 1)))
            print(_line(log[-1]), f"({time.time() - started:.0f} s)", flush=True)
    keras_side.model.save_teacher_preset(os.path.join(output_dir, "keras_teacher_preset"))
    record = {"seed": seed, "data_seed": data_seed, "qkv_init_std": args.qkv_init_std, "steps": steps,
              "eval_images": len(images), "log": log, "one_step": evidence, "train_loss": losses,
              "seconds": time.time() - started,
              "presets": {"keras": os.path.join(output_dir, "keras_teacher_preset"),
                          "release": convert(torch_side.teacher.state_dict(), "release_teacher_preset")}}
    io.write_json(os.path.join(output_dir, "lockstep.json"), record)
    return record
