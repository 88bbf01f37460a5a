"""Times the authors' PyTorch code (a local clone of CASIA-IVA-Lab/PASS-reID)
for `benchmark.py`: the same steps, imported from that clone at run time.

Shims, because the 2022 code targets torch 1.8: `torch._six` is gone (a
module with `container_abcs` stands in); `DINOLoss` is read from
`PASS/main_pass.py` (which imports torchvision) by parsing the file; its
center all-reduce runs in a one-process gloo group on 127.0.0.1.
"""

import ast
import collections.abc
import os
import statistics
import sys
import time
import types


def _torch():
    import torch

    torch.set_num_threads(os.cpu_count())
    sys.modules.setdefault("torch._six", types.SimpleNamespace(container_abcs=collections.abc))
    return torch


def _import_from(folder, name):
    sys.path.insert(0, folder)
    try:
        return __import__(name)
    finally:
        sys.path.remove(folder)


def _dino_loss_class(repo, torch):
    source = open(os.path.join(repo, "PASS", "main_pass.py")).read()
    tree = ast.parse(source)
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "DINOLoss")
    import numpy as np
    import torch.distributed as dist

    namespace = {"torch": torch, "nn": torch.nn, "F": torch.nn.functional, "np": np, "dist": dist}
    exec(compile(ast.Module(body=[node], type_ignores=[]), "main_pass.py", "exec"), namespace)
    if not dist.is_initialized():
        dist.init_process_group("gloo", init_method="tcp://127.0.0.1:29533", rank=0, world_size=1)
    return namespace["DINOLoss"]


def _median_seconds(step, args):
    """With --precision mixed_bfloat16 the official code runs under CPU
    bfloat16 autocast (its own mixed precision is fp16 autocast on GPU)."""
    torch = _torch()
    bfloat16 = getattr(args, "precision", "float32") == "mixed_bfloat16"
    times = []
    for _ in range(args.warmup + args.steps):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[args.warmup:])


def pretrain_step_seconds(repo, arch, batch, args):
    """One `train_one_epoch` iteration of `PASS/main_pass.py`."""
    torch = _torch()
    folder = os.path.join(repo, "PASS")
    vits, utils = _import_from(folder, "vision_transformer"), _import_from(folder, "utils")

    def network(**kwargs):
        backbone = vits.__dict__[arch](img_size=(256, 128), patch_size=16, **kwargs)
        return utils.MultiCropWrapper(backbone, vits.DINOHead(backbone.embed_dim, 65536))

    student, teacher = network(drop_path_rate=0.1), network()
    teacher.load_state_dict(student.state_dict())
    for p in teacher.parameters():
        p.requires_grad = False
    loss_fn = _dino_loss_class(repo, torch)(65536, 11, 0.04, 0.04, 0, 100)
    optimizer = torch.optim.AdamW(utils.get_params_groups(student), lr=1e-4)
    images = [torch.randn(batch, 3, 256, 128) for _ in range(2)] + [
        torch.randn(batch, 3, 128, 64) for _ in range(9)
    ]

    def step():
        teacher_output = teacher(images[:2])
        loss = loss_fn(teacher_output, *student(images), 0)
        optimizer.zero_grad()
        loss.backward()
        utils.clip_gradients(student, 3.0)
        utils.cancel_gradients_last_layer(0, student, 1)
        optimizer.step()
        with torch.no_grad():
            for q, k in zip(student.parameters(), teacher.parameters()):
                k.data.mul_(0.996).add_(0.004 * q.detach().data)

    return _median_seconds(step, args)


def _transreid(repo, arch, **kwargs):
    module = _import_from(os.path.join(repo, "PASS_transreid", "model", "backbones"), "vit_pytorch")
    name = {"vit_small": "vit_small_patch16_224_TransReID", "vit_base": "vit_base_patch16_224_TransReID"}[arch]
    return getattr(module, name)(img_size=(256, 128), stride_size=16, **kwargs)


def finetune_step_seconds(repo, arch, batch, args):
    """TransReID backbone + four BNNecks + classifier, CE + official soft
    triplet (`PASS_transreid/loss/triplet_loss.py`), SGD: one step."""
    torch = _torch()
    nn = torch.nn
    backbone = _transreid(repo, arch, drop_path_rate=0.1)
    triplet = _import_from(os.path.join(repo, "PASS_transreid", "loss"), "triplet_loss").TripletLoss()
    dim = backbone.embed_dim
    necks = nn.ModuleList(nn.BatchNorm1d(dim) for _ in range(4))
    classifier = nn.Linear(2 * dim, 751, bias=False)
    params = list(backbone.parameters()) + list(necks.parameters()) + list(classifier.parameters())
    optimizer = torch.optim.SGD(params, lr=4e-4, momentum=0.9, weight_decay=1e-4)
    images = torch.randn(batch, 3, 256, 128)
    labels = torch.arange(batch // 4).repeat_interleave(4)

    def step():
        cls, p1, p2, p3 = backbone(images)
        before = torch.cat([cls, (p1 + p2 + p3) / 3], 1)
        after = torch.cat([necks[0](cls), (necks[1](p1) + necks[2](p2) + necks[3](p3)) / 3], 1)
        loss = nn.functional.cross_entropy(classifier(after), labels) + triplet(before, labels)[0]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return _median_seconds(step, args)


def extract_seconds(repo, arch, batch, args):
    """TransReID backbone forward in eval mode, no_grad."""
    torch = _torch()
    backbone = _transreid(repo, arch).eval()
    images = torch.randn(batch, 3, 256, 128)

    def step():
        with torch.no_grad():
            backbone(images)

    return _median_seconds(step, args)
