"""Speed of keras-pass on the current Keras backend, and of the official code.

    KERAS_BACKEND=tensorflow python tools/benchmark.py all
    KERAS_BACKEND=jax python tools/benchmark.py pretrain extract --official-repo ~/PASS-reID

Subcommands (any number; `all` = every one):
  pretrain  images/s of one PASS pre-training step: ViT-S/16, 2 global 256x128
            + 9 local 128x64 crops, four heads of 65,536 prototypes, batch 8
  finetune  images/s of one supervised fine-tuning step: ViT-S/16 256x128, batch 32
  extract   images/s of feature extraction: ViT-S/16 256x128, batch 64
  data      source images/s of the multi-crop tf.data pipeline (2+9 crops each)
  eval      seconds of evaluation, Market-1501 sized and 20k x 20k, +- re-ranking
  cluster   seconds to pseudo-label N random 768-d features (k-reciprocal Jaccard
            k1=30/k2=6 + DBSCAN eps 0.6), N = --cluster-sizes (10,000 and 30,000)
  peak      measured matmul peak of this machine (GFLOP/s) in float32 (and
            bfloat16 under --precision mixed_bfloat16; PyTorch's too with
            --official-repo), the reference for the achieved GFLOP/s printed
            by pretrain/finetune/extract

Figures are medians over --steps timed repetitions after --warmup untimed
ones. With --official-repo (a local clone of CASIA-IVA-Lab/PASS-reID; its
code is imported from there at run time, never copied) and torch installed,
pretrain/finetune/extract also time the official PyTorch code (under CPU
bfloat16 autocast with --precision mixed_bfloat16) and print ours/official.
--tiny runs every benchmark once on a tiny model (smoke test).
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import benchmark_official  # noqa: E402
from benchmark_flops import pass_step_flops, reid_step_flops, vit_forward_flops  # noqa: E402

COMMANDS = ("pretrain", "finetune", "extract", "data", "eval", "cluster", "peak")


class StepTimer(keras.callbacks.Callback):
    """Wall time of each training step (the loss is read: JAX syncs)."""

    def on_train_batch_begin(self, batch, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        float(keras.ops.convert_to_numpy(logs["loss"]))
        self.times.append(time.perf_counter() - self.start)

    def on_train_begin(self, logs=None):
        self.times = []


def _median_after_warmup(times, warmup):
    return statistics.median(times[warmup:] or times)


def _fit_times(model, data, args):
    import tensorflow as tf

    timer = StepTimer()
    dataset = tf.data.Dataset.from_tensors(data).repeat()
    model.fit(dataset, steps_per_epoch=args.warmup + args.steps, epochs=1, callbacks=[timer], verbose=0)
    return _median_after_warmup(timer.times, args.warmup)


def _compare(row, args, official_seconds, batch):
    """Adds the official code's speed and the ratio when --official-repo is given."""
    if args.official_repo and not args.tiny:
        official = official_seconds(args.official_repo, args.arch, batch, args)
        row.update({"official images/s": batch / official,
                    "ours/official": row["images/s"] / (batch / official)})
    return row


def _arch(args):
    from keras_pass.models.configs import arch_config

    if args.tiny:
        return arch_config("vit_tiny", hidden_dim=32, num_layers=2, num_heads=2, mlp_dim=64)
    return arch_config(args.arch)


def bench_pretrain(args):
    from keras_pass.models.backbone import PASSBackbone
    from keras_pass.pretraining.trainer import PASSPretrainer

    config = _arch(args)
    batch, out_dim = (2, 64) if args.tiny else (args.pretrain_batch, 65536)
    backbone = PASSBackbone(**config, drop_path_rate=0.1, pos_embed_interpolation="always", dtype=args.dtype)
    model = PASSPretrainer(backbone, out_dim=out_dim)
    model.compile(jit_compile=args.jit)
    rng = np.random.default_rng(0)
    data = {"global_crops": rng.normal(size=(batch, 2, 256, 128, 3)).astype("float32"),
            "local_crops": rng.normal(size=(batch, 3, 3, 128, 64, 3)).astype("float32")}
    seconds = _fit_times(model, data, args)
    flops = pass_step_flops(config, batch, out_dim)
    row = {"images/s": batch / seconds, "s/step": seconds, "GFLOP/s": flops / seconds / 1e9}
    return _compare(row, args, benchmark_official.pretrain_step_seconds, batch)


def bench_finetune(args):
    from keras_pass.models.backbone import PASSBackbone
    from keras_pass.reid.model import ReIDModel
    from keras_pass.reid.optimizers import make_optimizer

    config = _arch(args)
    batch = 8 if args.tiny else args.finetune_batch
    model = ReIDModel(PASSBackbone(**config, drop_path_rate=0.1, dtype=args.dtype), num_classes=751)
    model.compile(optimizer=make_optimizer(steps_per_epoch=100), jit_compile=args.jit)
    rng = np.random.default_rng(0)
    images = rng.normal(size=(batch, 256, 128, 3)).astype("float32")
    labels = np.repeat(np.arange(batch // 4), 4).astype("int32")
    seconds = _fit_times(model, (images, labels), args)
    row = {"images/s": batch / seconds, "s/step": seconds,
           "GFLOP/s": reid_step_flops(config, batch) / seconds / 1e9}
    return _compare(row, args, benchmark_official.finetune_step_seconds, batch)


def bench_extract(args):
    from keras_pass.models.backbone import PASSBackbone

    config = _arch(args)
    batch = 4 if args.tiny else args.extract_batch
    backbone = PASSBackbone(**config, dtype=args.dtype)
    images = np.random.default_rng(0).normal(size=(batch, 256, 128, 3)).astype("float32")
    times = []
    for _ in range(args.warmup + args.steps):
        start = time.perf_counter()
        np.asarray(backbone.predict_on_batch(images)["cls"])
        times.append(time.perf_counter() - start)
    seconds = _median_after_warmup(times, args.warmup)
    flops = batch * vit_forward_flops(config, 128, 1 + config["num_parts"])
    row = {"images/s": batch / seconds, "GFLOP/s": flops / seconds / 1e9}
    return _compare(row, args, benchmark_official.extract_seconds, batch)


def bench_data(args):
    from PIL import Image

    from keras_pass.pretraining.data import make_pass_dataset

    batch, count = (2, 8) if args.tiny else (8, 64)
    with tempfile.TemporaryDirectory() as folder:
        rng = np.random.default_rng(0)
        for i in range(count):
            pixels = rng.integers(0, 256, size=(256, 128, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(os.path.join(folder, f"{i:04d}.jpg"), quality=90)
        dataset = make_pass_dataset(folder, batch, seed=0, repeat=True)
        iterator = iter(dataset)
        batches = args.warmup + max(args.steps, 1) * (1 if args.tiny else 4)
        times = []
        for _ in range(batches):
            start = time.perf_counter()
            next(iterator)
            times.append(time.perf_counter() - start)
    seconds = _median_after_warmup(times, args.warmup)
    return {"images/s": batch / seconds, "crops/s": batch * 11 / seconds}


def bench_eval(args):
    from benchmark_evaluation import peak_memory_gb, synthetic_problem
    from keras_pass.reid.evaluation import evaluate_features
    from keras_pass.reid.reranking import re_ranking_features

    sizes = [(60, 300, 20)] if args.tiny else [(3368, 15913, 750), (20000, 20000, 2000)]
    row = {}
    for num_query, num_gallery, num_ids in sizes:
        q, g, q_pids, g_pids, q_cams, g_cams = synthetic_problem(num_query, num_gallery, num_ids)
        name = f"{num_query}x{num_gallery}"
        start = time.perf_counter()
        evaluate_features(q, g, q_pids, g_pids, q_cams, g_cams)
        row[f"{name} s"] = time.perf_counter() - start
        if args.rerank or args.tiny or num_query < 10000:
            start = time.perf_counter()
            re_ranking_features(q, g)
            row[f"{name} rerank s"] = time.perf_counter() - start
    row["peak GB"] = peak_memory_gb()
    return row


def bench_cluster(args):
    from benchmark_clustering import time_clustering

    row = {}
    for size in [300] if args.tiny else args.cluster_sizes:
        timing = time_clustering(size, num_ids=10 if args.tiny else 0, search=args.cluster_search)
        row[f"N={size} s"] = timing["jaccard s"] + timing["dbscan s"]
        row[f"N={size} clusters"] = timing["clusters"]
        row["peak GB"] = timing["peak GB"]
    return row


def _matmul_gflops(dtype, args, library="keras"):
    """Median GFLOP/s of one square matmul in `dtype` ("float32"/"bfloat16")."""
    size = 256 if args.tiny else 2048
    a = np.random.default_rng(0).normal(size=(size, size)).astype("float32")
    if library == "torch":
        import torch

        a = torch.from_numpy(a).to(getattr(torch, dtype))
        matmul, to_scalar = torch.matmul, lambda c: float(c[0, 0])
    else:
        a = keras.ops.cast(keras.ops.convert_to_tensor(a), dtype)
        matmul = keras.ops.matmul
        to_scalar = lambda c: keras.ops.convert_to_numpy(keras.ops.cast(c[0, 0], "float32"))  # noqa: E731
        if keras.config.backend() == "jax":
            import jax

            matmul = jax.jit(matmul)
    times = []
    for _ in range(args.warmup + max(args.steps, 3)):
        start = time.perf_counter()
        to_scalar(matmul(a, a))
        times.append(time.perf_counter() - start)
    return 2 * size**3 / _median_after_warmup(times, args.warmup) / 1e9


def bench_peak(args):
    """Matmul peak in float32 and, under mixed_bfloat16, in bfloat16; with
    --official-repo also PyTorch's (the library the official code runs on)."""
    dtypes = ["float32"] + (["bfloat16"] if args.precision == "mixed_bfloat16" else [])
    row = {f"{dtype} GFLOP/s": _matmul_gflops(dtype, args) for dtype in dtypes}
    if args.official_repo:
        row.update({f"torch {dtype} GFLOP/s": _matmul_gflops(dtype, args, "torch") for dtype in dtypes})
    return row


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("commands", nargs="+", choices=COMMANDS + ("all",))
    parser.add_argument("--arch", default="vit_small", choices=("vit_tiny", "vit_small", "vit_base"))
    parser.add_argument("--steps", type=int, default=10, help="timed repetitions")
    parser.add_argument("--warmup", type=int, default=2, help="untimed repetitions first")
    parser.add_argument("--pretrain-batch", type=int, default=8)
    parser.add_argument("--finetune-batch", type=int, default=32)
    parser.add_argument("--extract-batch", type=int, default=64)
    parser.add_argument("--precision", default="float32", choices=("float32", "mixed_bfloat16"))
    parser.add_argument("--jit", default="auto", choices=("auto", "true", "false"))
    parser.add_argument("--rerank", action="store_true", help="also re-rank 20k x 20k (about a minute)")
    parser.add_argument("--cluster-sizes", type=int, nargs="+", default=[10000, 30000])
    parser.add_argument("--cluster-search", default="auto", choices=("auto", "numpy", "faiss"),
                        help="neighbour search of the clustering (auto: faiss-cpu if installed)")
    parser.add_argument("--official-repo", help="local clone of CASIA-IVA-Lab/PASS-reID")
    parser.add_argument("--tiny", action="store_true", help="tiny model, one repetition: a smoke test")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    args.jit = {"auto": "auto", "true": True, "false": False}[args.jit]
    args.dtype = None if args.precision == "float32" else args.precision
    if args.tiny:
        args.steps, args.warmup = 1, 1
    if "all" in args.commands:
        args.commands = list(COMMANDS)
    return args


def main(argv=None):
    args = parse_args(argv)
    benches = {"pretrain": bench_pretrain, "finetune": bench_finetune, "extract": bench_extract,
               "data": bench_data, "eval": bench_eval, "cluster": bench_cluster,
               "peak": bench_peak}
    print(f"backend={keras.config.backend()} keras={keras.version()} precision={args.precision} "
          f"jit={args.jit} cpus={os.cpu_count()}")
    results = {}
    for command in args.commands:
        results[command] = benches[command](args)
        cells = ", ".join(f"{k} {v:.3g}" for k, v in results[command].items())
        print(f"{command:9s} {cells}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"backend": keras.config.backend(), **vars(args), "results": results}, f, indent=1, default=str)
    return results


if __name__ == "__main__":
    main()
