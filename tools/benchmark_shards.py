"""Sharded (TFRecord) input vs the image-folder input of pre-training.

    python tools/benchmark_shards.py [--images 512] [--entries 1000000] [--batches 12]

1. images/s of `make_pass_dataset` on the same generated images, read from
   their folder and from `keras-pass shard` shards (crops 64x32/32x16, view
   augmentations off: the reading and decoding is what differs);
2. memory of each reader at `--entries` file entries: a list file of that
   many (never opened) paths for the folder reader, a `shards.json` of that
   many entries in 4096-image shards for the sharded reader, each measured in
   a fresh process (RSS growth from building the dataset and taking nothing;
   the sharded reader's shuffle window adds `window` encoded images when
   iterating).
Results: docs/experiments/sharded_input.md.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CROPS = dict(global_size=(64, 32), local_size=(32, 16), local_crops_per_part=1, view_augmentations="none")

MEMORY_PROBE = r"""
import json, os, resource, sys
def rss_mb():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
from keras_pass.pretraining.data import make_pass_dataset
import tensorflow as tf
before = rss_mb()
dataset = make_pass_dataset(sys.argv[1], 64, seed=0, global_size=(64, 32), local_size=(32, 16),
                            local_crops_per_part=1, view_augmentations="none")
print(json.dumps({"rss_growth_mb": rss_mb() - before, "steps_per_epoch": dataset.steps_per_epoch}))
"""


def throughput(source, batches, batch_size=32):
    from keras_pass.pretraining.data import make_pass_dataset

    dataset = make_pass_dataset(source, batch_size, seed=0, repeat=True, **CROPS)
    iterator = iter(dataset)
    next(iterator)  # start-up (tracing, first files) not timed
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def memory(source):
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", MEMORY_PROBE, source], env=env, capture_output=True,
                            text=True, timeout=900, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def fake_listing(folder, entries):
    """A list file and a shards.json of `entries` images (nothing else)."""
    list_file = os.path.join(folder, "list.txt")
    with open(list_file, "w") as handle:
        for i in range(entries):
            handle.write(f"LUPerson/{i // 1000:04d}/{i:08d}_0000_x.jpg\n")
    shard_dir = os.path.join(folder, "shards")
    os.makedirs(shard_dir)
    sizes = [4096] * (entries // 4096) + ([entries % 4096] if entries % 4096 else [])
    index = {"num_images": entries, "shard_size": 4096,
             "shards": [{"file": f"shard-{i:05d}-of-{len(sizes):05d}.tfrecord", "count": c}
                        for i, c in enumerate(sizes)]}
    with open(os.path.join(shard_dir, "shards.json"), "w") as handle:
        json.dump(index, handle)
    return list_file, shard_dir


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--batches", type=int, default=12)
    args = parser.parse_args()
    sys.path.insert(0, REPO)
    from keras_pass.data.synthetic import write_unlabeled
    from keras_pass.pretraining.shards import write_shards

    with tempfile.TemporaryDirectory() as folder:
        images = os.path.join(folder, "images")
        write_unlabeled(images, num_identities=args.images // 2, views=(1, 1), image_size=(128, 64), seed=0)
        write_shards(images, os.path.join(folder, "shards"), 64, verbose=False)
        rates = {name: throughput(source, args.batches) for name, source in
                 (("folder", images), ("shards", os.path.join(folder, "shards")))}
        os.makedirs(os.path.join(folder, "listing"))
        listing = fake_listing(os.path.join(folder, "listing"), args.entries)
        memories = {"folder": memory(listing[0]), "shards": memory(listing[1])}
    print(f"| reader | images/s ({args.images} images 128x64, batch 32) | "
          f"RSS growth at {args.entries:,} entries (MB) |")
    print("|---|---|---|")
    for name in ("folder", "shards"):
        print(f"| {name} | {rates[name]:.0f} | {memories[name]['rss_growth_mb']:.0f} |")
    print(f"(peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
