"""The authors' PASS pre-training on a demo folder, measured like the demo.

    KERAS_BACKEND=tensorflow keras-pass demo --seed S --output_dir D     # ours (or --quick)
    KERAS_BACKEND=tensorflow python tools/official_on_demo.py D --official-repo CLONE \\
        [--qkv-init-std 0.1] [--output_dir OUT]
    KERAS_BACKEND=tensorflow python tools/official_on_demo.py D --official-repo CLONE --same-start \\
        [--steps N] [--log-every 50] [--data-seed S]   # both from the same initial weights

Imports a local clone of CASIA-IVA-Lab/PASS-reID at run time (nothing of it
is copied here) and runs ITS `train_one_epoch` (`PASS/main_pass.py`): its
ViT with part tokens (`vision_transformer.py`), `DINOHead`, `DINOLoss`,
`MultiCropWrapper`, parameter groups, gradient clipping, last-layer
freezing, cosine schedules (`utils.cosine_scheduler`) and EMA teacher, on
the demo folder's unlabeled images with the demo's settings (the mode and
seed in D's metrics.json). Its teacher is converted with keras-pass's
converter and measured with the demo's instruments (kNN mAP with an
interval, sibling mAP, part attention, part-probe locality, and the mean
cosine between the teacher's final-norm [CLS] and [PART1] outputs on query +
gallery images), printed beside the demo's own PASS row.

`--same-start` (`tools/official_same_start.py`, issue 26 item 6) instead
starts keras-pass's trainer from the release's initial weights converted,
runs both in lockstep on the same batches and logs token cosines, the loss
split per token and the distance between the two teachers over the run.

What has to be adapted, and how:
- sizes: the demo's ViT (width 96, depth 4, 3 heads, MLP 384, patch 8, qkv
  bias, LayerNorm eps 1e-6) built from the release's `VisionTransformer`
  at 64x32; heads out_dim 256, hidden 256, bottleneck 64; batch 32, lr
  base_lr x 32 / 256, the demo's epochs x steps, teacher momentum,
  temperatures and weight decay; no drop path (the demo's 0.0).
- views: torchvision is not installed here, so `DataAugmentationDINO` cannot
  run; the crops come from keras-pass's `make_pass_dataset` with the demo's
  settings (2 global 64x32 crops, 3 local 32x16 crops per region, each from
  its own band, colour-preserving jitter): the same views as the demo's run.
- initialisation: the release's (truncated normal 0.02); `--qkv-init-std`
  re-draws the qkv kernels with the demo's std (0.1, the default here; 0.02
  keeps the release's).
- CPU: `.cuda()` and `torch.cuda.synchronize` become no-ops, the student is
  wrapped where the loop expects DDP's `.module`, and `DINOLoss`'s center
  all-reduce runs in a one-process gloo group; `torchvision` is a stub
  module (main_pass.py imports it but the loop does not use it).
"""

import argparse
import contextlib
import os
import sys
import tempfile
import time
import types

import numpy as np

from benchmark_official import _import_from, _torch


def _stub_torchvision():
    stub = types.ModuleType("torchvision")
    stub.datasets, stub.transforms, stub.models = (types.ModuleType(f"torchvision.{n}")
                                                   for n in ("datasets", "transforms", "models"))
    for name in ("", ".datasets", ".transforms", ".models"):
        sys.modules.setdefault("torchvision" + name, getattr(stub, name[1:], stub) if name else stub)


@contextlib.contextmanager
def _on_cpu(torch, utils):
    """One CPU process: no device copies, and the logger's cross-process
    sums (CUDA tensors) skipped, exact for a world of one."""
    saved = torch.Tensor.cuda, torch.cuda.synchronize, utils.is_dist_avail_and_initialized
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    torch.cuda.synchronize = lambda *args, **kwargs: None
    utils.is_dist_avail_and_initialized = lambda: False
    try:
        yield
    finally:
        torch.Tensor.cuda, torch.cuda.synchronize, utils.is_dist_avail_and_initialized = saved


def _modules(repo):
    torch = _torch()
    _stub_torchvision()
    folder = os.path.join(repo, "PASS")
    main_pass = _import_from(folder, "main_pass")
    import torch.distributed as dist

    if not dist.is_initialized():
        rendezvous = os.path.join(tempfile.mkdtemp(prefix="official_on_demo_"), "rendezvous")  # no port to clash
        dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=0, world_size=1)
    return torch, main_pass, _import_from(folder, "utils"), _import_from(folder, "vision_transformer")


def _networks(torch, utils, vits, backbone, pretrain, qkv_init_std):
    def network():
        model = vits.VisionTransformer(
            img_size=(64, 32), patch_size=backbone["patch_size"], embed_dim=backbone["hidden_dim"],
            depth=backbone["num_layers"], num_heads=backbone["num_heads"],
            mlp_ratio=backbone["mlp_dim"] / backbone["hidden_dim"], qkv_bias=True,
            norm_layer=lambda dim: torch.nn.LayerNorm(dim, eps=1e-6), drop_path_rate=pretrain["drop_path_rate"])
        head = vits.DINOHead(backbone["hidden_dim"], pretrain["out_dim"], hidden_dim=pretrain["head_hidden_dim"],
                             bottleneck_dim=pretrain["bottleneck_dim"])
        return utils.MultiCropWrapper(model, head)

    student, teacher = network(), network()
    if qkv_init_std != 0.02:
        for block in student.backbone.blocks:
            utils.trunc_normal_(block.attn.qkv.weight, std=qkv_init_std)
    teacher.load_state_dict(student.state_dict())
    for parameter in teacher.parameters():
        parameter.requires_grad = False
    return student, teacher


class _Loader:
    """The demo's multi-crop batches as the release's loader yields them: a
    list of 11 NCHW tensors (2 global, then 3 local crops per region)."""

    def __init__(self, torch, dataset, steps):
        self.torch, self.batches, self.steps = torch, dataset.as_numpy_iterator(), steps

    def __len__(self):
        return self.steps

    def __iter__(self):
        for _ in range(self.steps):
            yield [self.torch.from_numpy(v) for v in batch_views(next(self.batches))], None


def batch_views(batch):
    """A `make_pass_dataset` batch as the release's 11 NCHW arrays: 2 global,
    then 3 local crops per region, region by region."""
    views = [batch["global_crops"][:, i] for i in range(batch["global_crops"].shape[1])]
    local = batch["local_crops"]  # (B, parts, crops per part, h, w, 3)
    views += [local[:, p, c] for p in range(local.shape[1]) for c in range(local.shape[2])]
    return [np.ascontiguousarray(v.transpose(0, 3, 1, 2)) for v in views]


def train_official(repo, demo_dir, config, seed, qkv_init_std, threads=1):
    """Runs the release's training loop; returns the teacher backbone's
    state dict and the mean loss of each epoch."""
    from keras_pass.pretraining.data import make_pass_dataset

    torch, main_pass, utils, vits = _modules(repo)
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    pretrain, backbone = config["pretrain"], config["backbone"]
    student, teacher = _networks(torch, utils, vits, backbone, pretrain, qkv_init_std)
    epochs, steps, batch = pretrain["epochs"], pretrain["steps_per_epoch"], pretrain["batch_size"]
    from keras_pass.recipes.demo import demo_view_augmentations

    dataset = make_pass_dataset(
        os.path.join(demo_dir, "data", "luperson"), batch, global_size=config["image_size"],
        local_size=config["local_size"], view_augmentations=demo_view_augmentations(config), seed=seed,
        repeat=True)
    loss = main_pass.DINOLoss(pretrain["out_dim"], 11, pretrain["warmup_teacher_temp"], pretrain["teacher_temp"],
                              0, epochs)
    optimizer = torch.optim.AdamW(utils.get_params_groups(student))
    lr = utils.cosine_scheduler(pretrain["base_lr"] * batch / 256, 1e-6, epochs, steps,
                                warmup_epochs=pretrain["warmup_epochs"])
    weight_decay = utils.cosine_scheduler(0.04, 0.4, epochs, steps)
    momentum = utils.cosine_scheduler(*pretrain["teacher_momentum"], epochs, steps)
    args = types.SimpleNamespace(epochs=epochs, clip_grad=3.0, freeze_last_layer=pretrain["freeze_last_layer_epochs"])
    student_ddp = _DDP(torch, student)  # the loop reads DDP's `.module`
    loader = _Loader(torch, dataset, steps)
    history = []
    with _on_cpu(torch, utils):
        for epoch in range(epochs):
            stats = main_pass.train_one_epoch(student_ddp, teacher, teacher, loss, loader, optimizer, lr,
                                              weight_decay, momentum, epoch, None, args)
            history.append(stats["loss"])
    return {k: v.numpy() for k, v in teacher.backbone.state_dict().items()}, history


def _DDP(torch, module):
    class DDP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.module = module

        def forward(self, *args):
            return self.module(*args)

    return DDP()


def measure(preset_dir, demo_dir, config, seed):
    """The demo's rows for one backbone preset."""
    from keras_pass.models.attention import attention_report
    from keras_pass.models.backbone import PASSBackbone
    from keras_pass.recipes.demo_measures import evaluate_retrieval, labelled_people, run_part_probe
    from keras_pass.reid.data import load_images
    from keras_pass.reid.datasets import market1501
    from keras_pass.reid.evaluation import bootstrap_interval

    backbone = PASSBackbone.from_preset(preset_dir)
    dataset = market1501(os.path.join(demo_dir, "data", "market1501"))
    people = labelled_people(config, seed)
    results, sibling = evaluate_retrieval(backbone, dataset, people)
    step = max(1, len(dataset.query) // 120)
    images = load_images(list(dataset.query.paths[::step][:120]), backbone.image_shape[:2])
    _, shares, _ = attention_report(backbone, images)
    return {"mAP": results["mAP"], "mAP_interval": bootstrap_interval(results["query_ap"]),
            "sibling_mAP": sibling["mAP"], "attention": shares.tolist(),
            "locality": run_part_probe(backbone, dataset, people)["locality"],
            "pos_embed_interpolation": backbone.pos_embed_interpolation,
            "cosines": preset_cosines(preset_dir, demo_dir, config)}


def preset_cosines(preset_dir, demo_dir, config, count=512):
    """Mean cos(CLS, PART_i) and cos(PART_i, PART_j) of the preset's
    final-norm tokens on up to `count` query + gallery images, with each
    position-embedding semantics: a trainer's teacher preset keeps
    "always" (resampled on every call, as trained), a converted checkpoint
    gets "resize_only"; the same weights measured both ways."""
    from keras_pass.models.backbone import PASSBackbone
    from official_same_start import eval_images, token_cosines

    images = eval_images(demo_dir, config["image_size"], count)
    cosines = {}
    for mode in ("always", "resize_only"):
        out = PASSBackbone.from_preset(preset_dir, pos_embed_interpolation=mode).encode(images)
        cosines[mode] = token_cosines(np.asarray(out["cls"]), np.asarray(out["parts"]))
    return cosines


def _row(name, row):
    low, high = row["mAP_interval"]
    shares = "/".join(f"{100 * s:.0f}" for s in row["attention"])
    cosine = "/".join(f"{row['cosines'][m]['cls-part1']:.2f}" for m in ("always", "resize_only")) \
        if "cosines" in row else "-"
    return (f"{name:34s} {100 * row['mAP']:5.1f} [{100 * low:4.1f}, {100 * high:4.1f}] "
            f"{100 * row['sibling_mAP']:8.1f} {shares:>12s} {row['locality']:+9.1f} {cosine:>11s}")


_HEADER = (f"{'':34s} {'mAP [95% interval]':>19s} {'sibling':>8s} {'attention %':>12s} {'locality':>9s} "
           f"{'cos CLS-P1*':>11s}\n(* teacher tokens on query + gallery, position embeddings resampled on every "
           f"call / at the native size only)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("demo_dir", help="a finished `keras-pass demo` folder (its data, mode and seed)")
    parser.add_argument("--official-repo", required=True, help="a local clone of CASIA-IVA-Lab/PASS-reID")
    parser.add_argument("--qkv-init-std", type=float, default=0.1,
                        help="std of the qkv kernels at init: the demo's 0.1 (default) or the release's 0.02")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads; on a 2-core machine shared with other jobs, 2 threads "
                             "ran a step 10-15x slower than 1 (measured)")
    parser.add_argument("--output_dir", help="where the converted teacher and results go (default: "
                                             "DEMO_DIR/official_qkv<std>, or DEMO_DIR/same_start_qkv<std>_data<seed>)")
    same = parser.add_argument_group("--same-start: both implementations from the release's initial weights, "
                                     "in lockstep on the same batches (tools/official_same_start.py)")
    same.add_argument("--same-start", action="store_true", help="run the lockstep comparison instead")
    same.add_argument("--steps", type=int, help="stop after this many steps (default: the demo's whole run)")
    same.add_argument("--log-every", type=int, default=50, help="steps between logged measures (default 50)")
    same.add_argument("--data-seed", type=int, help="seed of the views (default: the demo's seed, which "
                                                    "also draws the initial weights)")
    same.add_argument("--eval-images", type=int, default=512,
                      help="query + gallery images of the token cosines (default 512)")
    args = parser.parse_args(argv)
    if not os.path.isfile(os.path.join(args.official_repo, "PASS", "main_pass.py")):
        parser.error(f"Expected a PASS-reID clone (PASS/main_pass.py). Received: --official-repo={args.official_repo}")
    from keras_pass import io
    from keras_pass.models.convert import convert_checkpoint
    from keras_pass.recipes.demo import DEMO_CONFIGS

    demo = io.read_json(os.path.join(args.demo_dir, "metrics.json"))
    config, seed = DEMO_CONFIGS[demo["mode"]], demo["seed"]
    if args.same_start:
        return _same_start(args, config, seed)
    output_dir = args.output_dir or os.path.join(args.demo_dir, f"official_qkv{args.qkv_init_std}")
    started = time.time()
    state_dict, history = train_official(args.official_repo, args.demo_dir, config, seed, args.qkv_init_std,
                                    args.threads)
    trained = time.time() - started
    preset = os.path.join(output_dir, "teacher_preset")
    convert_checkpoint(state_dict, preset, arch="vit_tiny", image_size=config["image_size"],
                       stride=config["backbone"]["patch_size"], **config["backbone"])
    rows = {f"authors' PASS (qkv std {args.qkv_init_std})": measure(preset, args.demo_dir, config, seed)}
    demo = io.read_json(os.path.join(args.demo_dir, "metrics.json"))  # a demo may finish meanwhile
    for start, name in (("random_init", "random init (the demo's)"), ("pass", "keras-pass PASS (the demo's)")):
        rows[name] = _demo_row(demo, start)
        demo_preset = os.path.join(args.demo_dir, "pretrain_pass" if start == "pass" else "random_init_preset",
                                   *(("teacher_preset",) if start == "pass" else ()))
        if rows[name] and os.path.isdir(demo_preset):
            rows[name]["cosines"] = preset_cosines(demo_preset, args.demo_dir, config)
    print(f"\n{demo['mode']} demo, seed {seed}: kNN retrieval of the pre-trained teacher (no labels)")
    print(_HEADER)
    for name, row in rows.items():
        print(_row(name, row) if row else f"{name:34s} not in metrics.json yet (demo unfinished)")
    io.write_json(os.path.join(output_dir, "results.json"), {
        "seed": seed, "mode": demo["mode"], "qkv_init_std": args.qkv_init_std, "rows": rows,
        "loss_per_epoch": history, "train_seconds": trained})
    return 0


def _same_start(args, config, seed):
    """Lockstep run, then the demo's rows for both final teachers."""
    import official_same_start

    data_seed = seed if args.data_seed is None else args.data_seed
    output_dir = args.output_dir or os.path.join(args.demo_dir, f"same_start_qkv{args.qkv_init_std}_data{data_seed}")
    record = official_same_start.run(args, config, seed, output_dir)
    rows = {f"{name} from the same start": measure(preset, args.demo_dir, config, seed)
            for name, preset in record["presets"].items()}
    print(f"\nafter {record['steps']} steps from the same initial weights (seed {seed}, views seed {data_seed})")
    print(_HEADER)
    for name, row in rows.items():
        print(_row(name, row))
    from keras_pass import io

    io.write_json(os.path.join(output_dir, "results.json"), {**record, "rows": rows})
    return 0


def _demo_row(demo, start):
    if f"{start}_knn" not in demo or start not in demo.get("part_probe", {}):
        return None
    return {"mAP": demo[f"{start}_knn"]["mAP"], "mAP_interval": demo[f"{start}_knn"]["mAP_interval"],
            "sibling_mAP": demo["sibling_mAP"][start]["knn"]["mAP"],
            "attention": demo["part_attention"][start]["share"], "locality": demo["part_probe"][start]["locality"]}


if __name__ == "__main__":
    sys.exit(main())
