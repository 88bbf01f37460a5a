"""Pictures people would rather look at than read (matplotlib, PNG files)."""


import numpy as np

from keras_pass.io import save_figure


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _atomic_savefig(figure, path):
    save_figure(figure, path, dpi=110, bbox_inches="tight")


def plot_attention_grid(images, maps, path, shares=None):
    """One row per image: the image, then the CLS and PART_i attention maps
    overlaid on it. `images` (B, H, W, 3) in [0, 1]; `maps` (B, 1+L, h, w)."""
    plt = _pyplot()
    num_images, num_maps = maps.shape[:2]
    titles = ["image", "[CLS]"] + [f"[PART{i}]" for i in range(1, num_maps)]
    if shares is not None:
        titles[2:] = [f"{t}\n{100 * s:.0f}% in region" for t, s in zip(titles[2:], shares)]
    figure, axes = plt.subplots(num_images, num_maps + 1, figsize=(1.3 * (num_maps + 1), 2.4 * num_images),
                                squeeze=False)
    height, width = images.shape[1:3]
    for row in range(num_images):
        axes[row, 0].imshow(images[row])
        for col in range(num_maps):
            axes[row, col + 1].imshow(images[row] * 0.45)
            axes[row, col + 1].imshow(maps[row, col], cmap="inferno", alpha=0.65,
                                      extent=(0, width, height, 0), interpolation="bilinear")
    for col, title in enumerate(titles):
        axes[0, col].set_title(title, fontsize=8)
    for axis in axes.ravel():
        axis.axis("off")
    _atomic_savefig(figure, path)
    return path


def plot_training_curves(curves, path, title=None):
    """`curves`: {panel title: {series name: list of values}} -> one panel each."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.2), squeeze=False)
    for axis, (panel, series) in zip(axes[0], curves.items()):
        for name, values in series.items():
            axis.plot(np.arange(1, len(values) + 1), values, marker="o", markersize=3, label=name)
        axis.set_title(panel, fontsize=10)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    if title:
        figure.suptitle(title)
    _atomic_savefig(figure, path)
    return path
