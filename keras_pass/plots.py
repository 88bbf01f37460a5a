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


def plot_attention_grid(images, maps, path, shares=None, probe_table=None):
    """One row per image: the image, then the CLS and PART_i attention maps
    overlaid on it. `images` (B, H, W, 3) in [0, 1]; `maps` (B, 1+L, h, w).
    `probe_table`: (row names, column names, values in [0, 1], title) drawn
    as an annotated heat map beside the maps."""
    plt = _pyplot()
    num_images, num_maps = maps.shape[:2]
    titles = ["image", "[CLS]"] + [f"[PART{i}]" for i in range(1, num_maps)]
    if shares is not None:
        titles[2:] = [f"{t}\n{100 * s:.0f}% in region" for t, s in zip(titles[2:], shares)]
    extra = 0 if probe_table is None else 3.4
    figure = plt.figure(figsize=(1.3 * (num_maps + 1) + extra, 2.4 * num_images), layout="constrained")
    ratios = [1] * (num_maps + 1) + ([extra / 1.3] if extra else [])
    grid = figure.add_gridspec(num_images, len(ratios), width_ratios=ratios)
    axes = np.array([[figure.add_subplot(grid[row, col]) for col in range(num_maps + 1)]
                     for row in range(num_images)])
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
    if probe_table is not None:
        _probe_heat_map(figure.add_subplot(grid[:, -1]), *probe_table)
    _atomic_savefig(figure, path)
    return path


def _probe_heat_map(axis, rows, columns, values, title):
    axis.imshow(values, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    for (row, col), value in np.ndenumerate(values):
        axis.text(col, row, f"{100 * value:.0f}", ha="center", va="center", fontsize=8,
                  color="black" if value > 0.6 else "white")
    axis.set_xticks(range(len(columns)), columns, rotation=60, ha="right", fontsize=7)
    axis.set_yticks(range(len(rows)), rows, fontsize=8)
    axis.set_title(title, fontsize=8)


def plot_training_curves(curves, path, title=None):
    """`curves`: {panel title: {series name: (epochs, values)}} -> one panel
    each; a panel with no values is left out."""
    plt = _pyplot()
    curves = {panel: series for panel, series in curves.items()
              if any(len(values) for _, values in series.values())}
    figure, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.4), squeeze=False,
                                layout="constrained")
    for axis, (panel, series) in zip(axes[0], curves.items()):
        for name, (epochs, values) in series.items():
            axis.plot(epochs, values, marker="o", markersize=3, label=name)
        axis.set_title(panel, fontsize=10)
        axis.set_xlabel("epoch")
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    if title:
        figure.suptitle(title)
    _atomic_savefig(figure, path)
    return path
