"""Gallery search: an index of L2-normalised features of any image folder.

`build_index` embeds a gallery chunk by chunk into `INDEX_DIR` (resumable:
finished chunks are kept, a re-run continues), then writes

    index.json    model, image count, feature size, chunk size
    paths.txt     one gallery file per line (absolute)
    features.npy  (N, D) float32, unit rows
    camids.npy    camera ids parsed from names such as `0002_c3s1_...` (-1: none)

`GalleryIndex.search` ranks by squared Euclidean distance of unit vectors
(`2 - 2 cos`), the distance `keras-pass evaluate` reports thresholds in,
with one NumPy matrix product per block of queries (faiss's exact index on
request: slower here, see docs/experiments/search_speed.md).
"""

import dataclasses
import os
import re

import numpy as np

from keras_pass import io
from keras_pass.data.images import check_images, list_image_files
from keras_pass.deploy.embedder import Embedder
from keras_pass.uda.jaccard import SEARCH_METHODS

INDEX_FILE, PATHS_FILE, FEATURES_FILE, CAMIDS_FILE = "index.json", "paths.txt", "features.npy", "camids.npy"
CHUNKS_DIR = "chunks"
_CAMERA = re.compile(r"_c(\d+)")


def camera_id(path):
    """0-based camera id from a ReID file name (`_c3` -> 2); -1 when absent."""
    match = _CAMERA.search(os.path.basename(path))
    return int(match.group(1)) - 1 if match else -1


def build_index(gallery, index_dir, model, batch_size=64, chunk_size=2048, verbose=True):
    """Embeds every image of `gallery` (folder, list file or list of paths)
    into `index_dir`; returns the `GalleryIndex`. `model`: a preset, `.keras`
    or `.pth` path (recorded, so `search` re-uses it) or a model object."""
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"Expected chunk_size >= 1. Received: chunk_size={chunk_size}")
    paths = check_images([os.path.abspath(p) for p in list_image_files(gallery)], f"gallery={gallery}")
    source = os.path.abspath(model) if isinstance(model, str) and os.path.exists(model) else model
    header = {"model": source if isinstance(source, str) else None, "num_images": len(paths),
              "chunk_size": chunk_size}
    if _finished(index_dir, header, paths):
        if verbose:
            print(f"{index_dir}: index of {len(paths)} images already complete")
        return GalleryIndex.load(index_dir)
    embedder = Embedder.from_model(model, batch_size=batch_size)  # a bad model: nothing written yet
    _start(index_dir, header, paths)
    chunks = [_chunk(index_dir, embedder, paths, start, chunk_size, verbose)
              for start in range(0, len(paths), chunk_size)]
    features = np.concatenate(chunks).astype(np.float32)
    io.save_npy(os.path.join(index_dir, FEATURES_FILE), features)
    io.save_npy(os.path.join(index_dir, CAMIDS_FILE), np.array([camera_id(p) for p in paths], np.int64))
    io.write_json(os.path.join(index_dir, INDEX_FILE), {**header, "feature_dim": features.shape[1],
                                                         "complete": True})
    for name in os.listdir(os.path.join(index_dir, CHUNKS_DIR)):
        os.remove(os.path.join(index_dir, CHUNKS_DIR, name))
    os.rmdir(os.path.join(index_dir, CHUNKS_DIR))
    return GalleryIndex.load(index_dir)


def _finished(index_dir, header, paths):
    index_file = os.path.join(index_dir, INDEX_FILE)
    if not os.path.isfile(index_file):
        return False
    saved = io.read_json(index_file)
    return saved.get("complete") and saved["num_images"] == header["num_images"] and _saved_paths(index_dir) == paths


def _saved_paths(index_dir):
    with open(os.path.join(index_dir, PATHS_FILE), encoding="utf-8") as f:
        return f.read().splitlines()


def _start(index_dir, header, paths):
    """Writes the header and file list, or checks them when resuming."""
    os.makedirs(os.path.join(index_dir, CHUNKS_DIR), exist_ok=True)
    io.remove_stale_temps(os.path.join(index_dir, CHUNKS_DIR))
    if os.path.isfile(os.path.join(index_dir, PATHS_FILE)):
        saved = io.read_json(os.path.join(index_dir, INDEX_FILE))
        if (_saved_paths(index_dir) != paths or saved.get("chunk_size") != header["chunk_size"]
                or saved.get("model") != header["model"]):
            raise ValueError("Expected the gallery, model and chunk size this index was started with "
                             f"(or a new folder). Received: index_dir={index_dir}")
        return
    io.write_text(os.path.join(index_dir, PATHS_FILE), "".join(p + "\n" for p in paths))
    io.write_json(os.path.join(index_dir, INDEX_FILE), {**header, "complete": False})


def _chunk(index_dir, embedder, paths, start, chunk_size, verbose):
    """Features of one chunk, computed once and kept for resuming."""
    path = os.path.join(index_dir, CHUNKS_DIR, f"{start // chunk_size:06d}.npy")
    stop = min(start + chunk_size, len(paths))
    if os.path.isfile(path):
        features = np.load(path)
        if len(features) == stop - start:
            return features
    if verbose:
        print(f"embedding gallery images {start + 1}-{stop} of {len(paths)}")
    features = embedder(paths[start:stop], verbose=verbose)
    io.save_npy(path, features)
    return features


@dataclasses.dataclass
class GalleryIndex:
    features: np.ndarray  # (N, D) float32, unit rows
    paths: list
    camids: np.ndarray
    model: str = None
    _faiss_index: object = dataclasses.field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def load(cls, index_dir):
        index_file = os.path.join(index_dir, INDEX_FILE)
        if not os.path.isfile(index_file):
            raise ValueError(f"Expected a gallery index folder (from `keras-pass index`) with {INDEX_FILE}. "
                             f"Received: index_dir={index_dir}")
        header = io.read_json(index_file)
        if not header.get("complete"):
            raise ValueError("Expected a complete index; re-run `keras-pass index` to finish it. "
                             f"Received: index_dir={index_dir}")
        features = np.load(os.path.join(index_dir, FEATURES_FILE))
        return cls(features, _saved_paths(index_dir), np.load(os.path.join(index_dir, CAMIDS_FILE)),
                   header.get("model"))

    def search(self, query_features, top_k=10, search="auto"):
        """(indices, distances), each `(Q, top_k)`, nearest first; `search`:
        "numpy" (also "auto": measured faster than faiss's exact flat index
        on 2 cores, docs/experiments/search_speed.md) or "faiss"."""
        if search not in SEARCH_METHODS:
            raise ValueError(f"Expected search in {SEARCH_METHODS}. Received: search={search}")
        queries = np.atleast_2d(np.asarray(query_features, np.float32))
        if queries.shape[1] != self.features.shape[1]:
            raise ValueError(f"Expected query features of size {self.features.shape[1]} (the index's). "
                             f"Received: shape={queries.shape}")
        if not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"Expected top_k >= 1. Received: top_k={top_k}")
        top_k = min(top_k, len(self.features))
        if search == "faiss":
            if self._faiss_index is None:  # built once: adding N vectors costs more than a search
                self._faiss_index = _faiss_index(self.features)
            similarities, indices = self._faiss_index.search(np.ascontiguousarray(queries), top_k)
        else:
            similarities, indices = _numpy_top_inner_products(self.features, queries, top_k)
        return indices, np.maximum(2.0 - 2.0 * similarities, 0.0)


def _faiss_index(features):
    import faiss

    index = faiss.IndexFlatIP(features.shape[1])  # exact inner product
    index.add(np.ascontiguousarray(features))
    return index


def _numpy_top_inner_products(features, queries, top_k, block=256):
    similarities, indices = [], []
    for start in range(0, len(queries), block):
        scores = queries[start:start + block] @ features.T
        top = np.argpartition(-scores, top_k - 1, axis=1)[:, :top_k]
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        indices.append(np.take_along_axis(top, order, axis=1))
        similarities.append(np.take_along_axis(top_scores, order, axis=1))
    return np.concatenate(similarities), np.concatenate(indices)
