import numpy as np
from PIL import Image

from keras_pass.plots import plot_attention_grid, plot_training_curves
from tests.helpers import once_under_tensorflow

# `keras_pass.plots` draws with matplotlib, no Keras op: the backend cannot change what is checked
# here.
pytestmark = once_under_tensorflow


def _width(path):
    with Image.open(path) as image:
        return image.size[0]


def test_attention_grid_draws_the_probe_table_beside_the_maps(tmp_path):
    images = np.full((2, 64, 32, 3), 0.5, np.float32)
    maps = np.full((2, 4, 8, 4), 1 / 32, np.float32)
    table = (["CLS", "PART1", "PART2", "PART3", "chance"], ["head (P1)", "belt (P2)"], np.full((5, 2), 0.4), "probe")
    plain = plot_attention_grid(images, maps, str(tmp_path / "plain.png"), shares=[0.5, 0.5, 0.5])
    beside = plot_attention_grid(images, maps, str(tmp_path / "beside.png"), [0.5, 0.5, 0.5], table)
    assert _width(beside) > 1.4 * _width(plain)


def test_training_curves_leave_out_a_panel_without_values(tmp_path):
    loss = {"loss": {"PASS": ([1, 2, 3], [3.0, 2.0, 1.5])}}
    alone = plot_training_curves(loss, str(tmp_path / "alone.png"))
    empty = plot_training_curves({**loss, "mAP": {"PASS": ((), ())}}, str(tmp_path / "empty.png"))
    drawn = plot_training_curves({**loss, "mAP": {"PASS": ((2, 3), (0.1, 0.2))}}, str(tmp_path / "drawn.png"))
    assert _width(empty) == _width(alone)
    assert _width(drawn) > 1.5 * _width(alone)
