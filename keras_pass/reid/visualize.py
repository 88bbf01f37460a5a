"""Ranking grids: each query followed by its top-k gallery images, with
green (same identity) or red (other identity) borders."""


import os
import re

import numpy as np

from keras_pass.io import save_figure
from keras_pass.reid.datasets import DUKE_NAME, MARKET_NAME

CORRECT, WRONG, QUERY = (40, 170, 60), (215, 40, 40), (70, 70, 70)


def ranked_gallery(distances, query_pid, query_camid, gallery_pids, gallery_camids,
                   keep_same_camera=False):
    """Gallery indices by distance, without junk (id -1) and, unless
    `keep_same_camera`, without same-id same-camera images (the protocol)."""
    order = np.argsort(distances, kind="stable")
    keep = gallery_pids[order] != -1
    if not keep_same_camera:
        keep &= ~((gallery_pids[order] == query_pid) & (gallery_camids[order] == query_camid))
    return order[keep]


_MSMT_NAME = re.compile(r"^\d{4}_\d{3}_(\d{2})_")  # PID_IDX_CC_...: camera CC


def camera_label(path, camid):
    """The camera as the file name writes it (`0002_c1s1_...` is camera 1,
    MSMT17's `0000_000_01_...` too), whereas records hold 0-based ids;
    other names (the generic layout keeps ids as written): `camid`."""
    name = os.path.basename(path)
    for pattern, group in ((MARKET_NAME, 2), (DUKE_NAME, 2), (_MSMT_NAME, 1)):
        match = pattern.match(name)
        if match:
            return int(match.group(group))
    return int(camid)


def image_tile(path, colour, size=(128, 64), border=5):
    from PIL import Image

    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB").resize(size[::-1], Image.BILINEAR))
    framed = np.empty((size[0] + 2 * border, size[1] + 2 * border, 3), np.uint8)
    framed[:] = colour
    framed[border:-border, border:-border] = pixels
    return framed


def plot_ranking(query, gallery, distances, query_indices, output_path, top_k=10,
                 keep_same_camera=False):
    """Writes a PNG grid (one row per query) and returns its path.

    Args:
        query, gallery: `ImageRecords` (paths, pids, camids).
        distances: `(len(query_indices), len(gallery))` rows for the queries.
        query_indices: indices into `query` of the rows.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if len(query_indices) == 0 or top_k < 1:
        raise ValueError(f"Expected queries and top_k >= 1. Received: {len(query_indices)} queries, "
                         f"top_k={top_k}")
    rows, cols = len(query_indices), top_k + 1
    figure, axes = plt.subplots(rows, cols, figsize=(1.15 * cols, 2.5 * rows), squeeze=False)
    for row, (q, row_distances) in enumerate(zip(query_indices, distances)):
        pid, camid = query.pids[q], query.camids[q]
        ranked = ranked_gallery(row_distances, pid, camid, gallery.pids, gallery.camids,
                                keep_same_camera)[:top_k]
        axes[row, 0].imshow(image_tile(query.paths[q], QUERY))
        axes[row, 0].set_title(f"query\nid {pid} cam {camera_label(query.paths[q], camid)}", fontsize=8)
        for col, g in enumerate(ranked, 1):
            right = gallery.pids[g] == pid
            axes[row, col].imshow(image_tile(gallery.paths[g], CORRECT if right else WRONG))
            axes[row, col].set_title(f"#{col} id {gallery.pids[g]}\nd={row_distances[g]:.4g}",
                                     fontsize=7, color="green" if right else "red")
        for ax in axes[row]:
            ax.axis("off")
    figure.tight_layout()
    return save_figure(figure, output_path, dpi=100)


UNJUDGED = (60, 110, 190)


def plot_search(query_paths, ranked_paths, ranked_distances, output_path, threshold=None):
    """Writes a PNG of search results (one row per query, nearest first)
    and returns its path. With a `threshold`, matches below it (the same
    person) get green borders and the rest red; without, all blue."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not query_paths:
        raise ValueError("Expected at least one query image. Received: none")
    rows, cols = len(query_paths), 1 + max(len(r) for r in ranked_paths)
    figure, axes = plt.subplots(rows, cols, figsize=(1.15 * cols, 2.5 * rows), squeeze=False)
    for row, (query, paths, distances) in enumerate(zip(query_paths, ranked_paths, ranked_distances)):
        axes[row, 0].imshow(image_tile(query, QUERY))
        axes[row, 0].set_title("query", fontsize=8)
        for col, (path, distance) in enumerate(zip(paths, distances), 1):
            same = None if threshold is None else distance < threshold
            colour = UNJUDGED if same is None else CORRECT if same else WRONG
            axes[row, col].imshow(image_tile(path, colour))
            axes[row, col].set_title(f"#{col} d={distance:.3g}", fontsize=7)
        for ax in axes[row]:
            ax.axis("off")
    figure.tight_layout()
    return save_figure(figure, output_path, dpi=100)
