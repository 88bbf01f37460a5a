"""Does TensorFlow's MultiWorkerMirroredStrategy train our pre-trainer?

    python tools/multi_worker_probe.py [--workers 2] [--timeout 300]

Starts `--workers` local TensorFlow workers (TF_CONFIG on 127.0.0.1, free
ports chosen at run time), each fitting the tiny PASSPretrainer for 2 steps
under `tf.distribute.MultiWorkerMirroredStrategy`, and prints each worker's
outcome (the last line of its error, or its final loss). The measurement
behind refusing `--distribution multi_worker_mirrored`:
docs/experiments/multi_worker.md.
"""

import argparse
import json
import os
import socket
import subprocess
import sys

WORKER = r"""
import keras, numpy as np, tensorflow as tf
from keras_pass.models.backbone import PASSBackbone
from keras_pass.pretraining.trainer import PASSPretrainer
strategy = tf.distribute.MultiWorkerMirroredStrategy()
print("replicas", strategy.num_replicas_in_sync, flush=True)
with strategy.scope():
    keras.utils.set_random_seed(0)
    backbone = PASSBackbone(image_shape=(64, 32, 3), hidden_dim=32, num_layers=2, num_heads=2, mlp_dim=64,
                            drop_path_rate=0.0, pos_embed_interpolation="always")
    model = PASSPretrainer(backbone, out_dim=64, head_hidden_dim=32, bottleneck_dim=16)
    model.compile(jit_compile=False)
rng = np.random.default_rng(0)
batch = {"global_crops": rng.normal(size=(4, 2, 64, 32, 3)).astype("float32"),
         "local_crops": rng.normal(size=(4, 3, 2, 32, 16, 3)).astype("float32")}
history = model.fit(tf.data.Dataset.from_tensors(batch).repeat(), epochs=1, steps_per_epoch=2, verbose=0)
print("loss", history.history["loss"][-1], flush=True)
"""


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=300)
    args = parser.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(args.workers)]}
    workers = []
    for index in range(args.workers):
        env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3",
               "PYTHONPATH": repo, "CUDA_VISIBLE_DEVICES": "",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        workers.append(subprocess.Popen([sys.executable, "-c", WORKER], cwd=repo, env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    for index, worker in enumerate(workers):
        try:
            output, _ = worker.communicate(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            worker.kill()
            output, _ = worker.communicate()
            output += f"\n(timed out after {args.timeout} s)"
        lines = [line for line in output.splitlines() if line.strip()]
        informative = [line for line in lines if line.startswith(("replicas", "loss"))]
        errors = [line for line in lines if "Error" in line or "timed out" in line]
        print(f"worker {index}: exit {worker.returncode}; " + "; ".join(informative + errors[-1:]))


if __name__ == "__main__":
    main()
