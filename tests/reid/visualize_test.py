import numpy as np
import pytest

from keras_pass.reid.datasets import ImageRecords, market1501, parse_image_name
from keras_pass.reid.visualize import camera_label, plot_ranking
from tests.helpers import make_market1501, once_under_tensorflow

# `keras_pass.reid.visualize` draws with matplotlib from feature files, no Keras op: the backend
# cannot change what is checked here.
pytestmark = once_under_tensorflow


@pytest.mark.parametrize("path, camid, label", [
    ("/m/0002_c1s1_000451_03.jpg", 0, 1),   # Market-1501: c1 is camera 1
    ("/m/0002_c6s3_000451_03.jpg", 5, 6),
    ("/d/0001_c2_f0046182.jpg", 1, 2),      # DukeMTMC-reID
    ("/s/0000_000_01_0303morning_0015_0.jpg", 0, 1),  # MSMT17: third field
    ("/g/12/3_0001.jpg", 3, 3),             # generic layout: ids as written
])
def test_pictures_name_cameras_as_the_file_names_do(path, camid, label):
    assert camera_label(path, camid) == label


def test_ranking_picture_titles_the_query_camera_from_its_name(tmp_path, monkeypatch):
    import matplotlib.axes

    dataset = market1501(make_market1501(tmp_path)[0])
    titles = []
    original = matplotlib.axes.Axes.set_title
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title",
                        lambda self, text, *a, **k: titles.append(text) or original(self, text, *a, **k))
    query = dataset.query.select([0])
    distances = np.zeros((1, len(dataset.gallery)))
    plot_ranking(query, dataset.gallery, distances, [0], str(tmp_path / "r.png"), top_k=2)
    written = parse_image_name(query.paths[0])[1] + 1  # the name's c<N>
    assert titles[0].endswith(f"cam {written}") and isinstance(query, ImageRecords)
