"""The record layer of sharded pre-training input: our TFRecord shards read
by `ShardReader` (tf.data) vs ArrayRecord files read by grain, on this
machine. Only the reading differs: decoding and multi-crop are the same TF
ops either way, so this measures what the format choice changes.

    PYTHONPATH=.:GRAIN_DIR python tools/benchmark_grain.py [--images 4096] [--entries 1000000]

(grain is not a dependency: `pip install --target GRAIN_DIR --no-deps grain
portpicker`; array_record comes with tensorflow-datasets.)

1. records/s of one epoch of encoded images (generated 128x64 JPEGs,
   64-image shards / ArrayRecord files): ShardReader (shards in a seeded
   order, records shuffled in 1024-record windows), grain (a global seeded
   shuffle by index: random access, `IndexSampler` + `DataLoader`, no
   workers), and for scale the TF decode + crops of make_pass_dataset per
   image (`tools/benchmark_shards.py`'s folder figure is the full pipeline);
2. mid-epoch resume: seconds to the first record at the middle of the
   epoch (ShardReader skips whole shards, then reads within one; grain
   starts at an index);
3. RSS growth (fresh process) of each reader holding `--entries` tiny
   records (100 bytes each, 4096 per file) and reading its first 1000.
Results: docs/experiments/sharded_input.md.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MEMORY_PROBE = r"""
import glob, json, os, sys
def rss_mb():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
kind, folder = sys.argv[1], sys.argv[2]
import tensorflow as tf
if kind == "grain":
    import grain.python as grain
tf.constant(1.0) + 1.0  # the TF runtime started in both: not a reader's cost
before = rss_mb()
if kind == "grain":
    source = grain.ArrayRecordDataSource(sorted(glob.glob(os.path.join(folder, "*.array_record"))))
    sampler = grain.IndexSampler(len(source), grain.NoSharding(), shuffle=True, num_epochs=1, seed=0)
    iterator = iter(grain.DataLoader(data_source=source, sampler=sampler, worker_count=0))
    for _ in range(1000):
        next(iterator)
else:
    from keras_pass.pretraining.shards import ShardReader
    for _ in ShardReader(folder, seed=0).records(0).take(1000):
        pass
print(json.dumps({"rss_growth_mb": rss_mb() - before}))
"""


def write_array_records(encoded, folder, per_file):
    from array_record.python.array_record_module import ArrayRecordWriter

    os.makedirs(folder, exist_ok=True)
    for start in range(0, len(encoded), per_file):
        writer = ArrayRecordWriter(os.path.join(folder, f"part-{start // per_file:05d}.array_record"),
                                   "group_size:1")  # one record per chunk: random access
        for record in encoded[start:start + per_file]:
            writer.write(record)
        writer.close()


def write_tfrecords(encoded, folder, per_file):
    """TFRecord files and the shards.json of `keras_pass.pretraining.shards`."""
    import tensorflow as tf

    os.makedirs(folder, exist_ok=True)
    shards = []
    for start in range(0, len(encoded), per_file):
        name = f"shard-{start // per_file:05d}.tfrecord"
        with tf.io.TFRecordWriter(os.path.join(folder, name)) as writer:
            for record in encoded[start:start + per_file]:
                feature = {"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[record]))}
                writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
        shards.append({"file": name, "count": len(encoded[start:start + per_file])})
    with open(os.path.join(folder, "shards.json"), "w") as handle:
        json.dump({"num_images": len(encoded), "shard_size": per_file, "shards": shards}, handle)


def timed(records, limit=None):
    """(records/s over `records` after the first, seconds to the first)."""
    start = time.perf_counter()
    iterator = iter(records)
    next(iterator)
    first = time.perf_counter() - start
    count, start = 0, time.perf_counter()
    for _ in iterator:
        count += 1
        if limit and count == limit:
            break
    return count / (time.perf_counter() - start), first


def grain_records(folder, seed=0, start=0):
    import glob

    import grain.python as grain

    source = grain.ArrayRecordDataSource(sorted(glob.glob(os.path.join(folder, "*.array_record"))))
    sampler = grain.IndexSampler(len(source), grain.NoSharding(), shuffle=True, num_epochs=1, seed=seed)
    loader = grain.DataLoader(data_source=source, sampler=sampler, worker_count=0)
    iterator = iter(loader)
    if start:  # grain's resume: the iterator state names the next index
        state = json.loads(iterator.get_state())
        state["last_seen_indices"] = {"0": start - 1}
        iterator.set_state(json.dumps(state).encode())
    return iterator


def tf_records(folder, start=0):
    from keras_pass.pretraining.shards import ShardReader

    return (record.numpy() for _, record in ShardReader(folder, seed=0).records(0, start))


def decode_and_crop_rate(encoded, count=256):
    import tensorflow as tf

    from keras_pass.pretraining.shards import decoded

    crop = tf.function(lambda contents: tf.image.resize(decoded(contents), (64, 32)))
    crop(tf.constant(encoded[0]))
    start = time.perf_counter()
    for record in encoded[:count]:
        crop(tf.constant(record))
    return count / (time.perf_counter() - start)


def memory(kind, folder):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([REPO] + sys.path), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", MEMORY_PROBE, kind, folder], env=env,
                            capture_output=True, text=True, timeout=900, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["rss_growth_mb"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--entries", type=int, default=1_000_000)
    args = parser.parse_args()
    sys.path.insert(0, REPO)
    from keras_pass.data.synthetic import write_unlabeled
    from keras_pass.data.images import list_image_files

    with tempfile.TemporaryDirectory() as folder:
        write_unlabeled(os.path.join(folder, "images"), num_identities=args.images // 2, views=(1, 1),
                        image_size=(128, 64), seed=0)
        encoded = [open(p, "rb").read() for p in list_image_files(os.path.join(folder, "images"))]
        write_tfrecords(encoded, os.path.join(folder, "tfrecord"), 64)
        write_array_records(encoded, os.path.join(folder, "array_record"), 64)
        middle = len(encoded) // 2 + 32
        readers = {"TFRecord + ShardReader (tf.data)": (tf_records, os.path.join(folder, "tfrecord")),
                   "ArrayRecord + grain": (grain_records, os.path.join(folder, "array_record"))}
        rows = {}
        for name, (reader, files) in readers.items():
            order = list(reader(files))
            if sorted(order) != sorted(encoded) or next(iter(reader(files, start=middle))) != order[middle]:
                raise RuntimeError(f"{name}: not every record once, or a resume elsewhere than its position")
            rows[name] = (timed(reader(files)), timed(reader(files, start=middle), limit=1))
        decode_rate = decode_and_crop_rate(encoded)
        tiny = [bytes(100)] * args.entries
        write_tfrecords(tiny, os.path.join(folder, "tiny_tfrecord"), 4096)
        write_array_records(tiny, os.path.join(folder, "tiny_array_record"), 4096)
        rss = {"TFRecord + ShardReader (tf.data)": memory("tf", os.path.join(folder, "tiny_tfrecord")),
               "ArrayRecord + grain": memory("grain", os.path.join(folder, "tiny_array_record"))}
    print(f"| reader | records/s, one epoch of {len(encoded)} JPEGs | s to the first record, resumed "
          f"mid-epoch | RSS growth at {args.entries:,} records (MB) |")
    print("|---|---|---|---|")
    for name, ((rate, _), (_, resume)) in rows.items():
        print(f"| {name} | {rate:.0f} | {resume:.3f} | {rss[name]:.0f} |")
    print(f"TF decode + resize of one 128x64 JPEG, for scale: {decode_rate:.0f} images/s")


if __name__ == "__main__":
    main()
