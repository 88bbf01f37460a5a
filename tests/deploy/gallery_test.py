import os

import numpy as np
import pytest

from keras_pass.models.backbone import PASSBackbone
from keras_pass.cli import index as index_cli
from keras_pass.cli import search as search_cli
from keras_pass.deploy import embedder as embedder_module
from keras_pass.deploy import gallery
from keras_pass.deploy.gallery import GalleryIndex, build_index, camera_id
from tests.helpers import TINY_BACKBONE, write_image

IDENTITIES = (3, 8, 21, 40)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A gallery of 4 identities x 4 images (two cameras) in sub-folders, a
    preset, and one unseen query image per identity."""
    root = tmp_path_factory.mktemp("gallery")
    seed = 0
    for pid in IDENTITIES:
        for n in range(4):
            seed += 1
            write_image(str(root / "gallery" / f"day{n % 2}" / f"{pid:04d}_c{1 + n % 2}s1_{seed:06d}_00.jpg"),
                        seed, identity=pid)
    queries = []
    for pid in IDENTITIES:
        queries.append(str(root / "queries" / f"{pid:04d}_c3s1_000000_00.jpg"))
        write_image(queries[-1], 1000 + pid, identity=pid)
    preset = str(root / "preset")
    PASSBackbone(**TINY_BACKBONE).save_to_preset(preset)
    return root, preset, queries


def _pid(path):
    return int(os.path.basename(path).split("_")[0])


def test_index_then_search_finds_the_identity(generated, tmp_path, capsys):
    root, preset, queries = generated
    index_dir = str(tmp_path / "index")
    assert index_cli.main([str(root / "gallery"), index_dir, "--model", preset, "--chunk-size", "5"]) == 0
    index = GalleryIndex.load(index_dir)
    assert len(index.paths) == 16 and index.features.shape == (16, 64)
    assert sorted(set(index.camids)) == [0, 1] and not os.path.exists(os.path.join(index_dir, "chunks"))
    picture = str(tmp_path / "search.png")
    assert search_cli.main([index_dir, *queries, "--top-k", "4", "--picture", picture, "--threshold", "0.5"]) == 0
    printed = capsys.readouterr().out
    blocks = printed.split("query ")[1:]
    assert len(blocks) == len(queries)
    for query, block in zip(queries, blocks):
        first = block.splitlines()[1].split()
        assert _pid(first[2]) == _pid(query)  # rank 1 is the query's identity
        assert first[3] in ("same", "different")
    from PIL import Image

    assert Image.open(picture).size[0] > 0
    # A finished index is not rebuilt.
    assert index_cli.main([str(root / "gallery"), index_dir, "--model", preset, "--chunk-size", "5"]) == 0
    assert "already complete" in capsys.readouterr().out


def test_interrupted_index_resumes_from_its_chunks(generated, tmp_path, monkeypatch):
    root, preset, _ = generated
    reference = build_index(str(root / "gallery"), str(tmp_path / "reference"), preset, chunk_size=5,
                            verbose=False)
    calls = []
    original = embedder_module.Embedder.__call__

    def flaky(self, images, verbose="auto"):
        calls.append(len(images))
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed while embedding the third chunk
        return original(self, images, verbose)

    monkeypatch.setattr(embedder_module.Embedder, "__call__", flaky)
    index_dir = str(tmp_path / "index")
    with pytest.raises(KeyboardInterrupt):
        build_index(str(root / "gallery"), index_dir, preset, chunk_size=5, verbose=False)
    assert sorted(os.listdir(os.path.join(index_dir, "chunks"))) == ["000000.npy", "000001.npy"]
    with pytest.raises(ValueError, match="complete index"):
        GalleryIndex.load(index_dir)
    calls.clear()
    resumed = build_index(str(root / "gallery"), index_dir, preset, chunk_size=5, verbose=False)
    assert calls == [5, 1]  # only the unfinished chunks
    np.testing.assert_allclose(resumed.features, reference.features, atol=1e-6)
    calls.clear()
    build_index(str(root / "gallery"), index_dir, preset, chunk_size=5, verbose=False)
    assert calls == []  # finished: nothing to do
    with pytest.raises(ValueError, match="this index was started with"):
        os.remove(os.path.join(index_dir, "features.npy"))
        gallery.io.write_json(os.path.join(index_dir, "index.json"), {"complete": False, "chunk_size": 5})
        build_index(str(root / "gallery"), index_dir, preset, chunk_size=7, verbose=False)


def test_numpy_search_equals_faiss_and_brute_force():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(5000, 32)).astype("float32")
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    queries = features[:7] + 0.05 * rng.normal(size=(7, 32)).astype("float32")
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    index = GalleryIndex(features, [str(i) for i in range(5000)], np.full(5000, -1))
    expected = ((queries[:, None] - features[None]) ** 2).sum(-1)
    expected_order = np.argsort(expected, axis=1)[:, :10]
    indices, distances = index.search(queries, top_k=10)
    np.testing.assert_array_equal(indices, expected_order)
    np.testing.assert_allclose(distances, np.take_along_axis(expected, expected_order, 1), atol=1e-5)
    pytest.importorskip("faiss")
    faiss_indices, faiss_distances = index.search(queries, top_k=10, search="faiss")
    np.testing.assert_array_equal(faiss_indices, expected_order)
    np.testing.assert_allclose(faiss_distances, distances, atol=1e-5)


def test_bad_search_input():
    index = GalleryIndex(np.eye(4, dtype="float32"), list("abcd"), np.full(4, -1))
    with pytest.raises(ValueError, match="size 4"):
        index.search(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="top_k=0"):
        index.search(np.zeros((1, 4)), top_k=0)
    assert index.search(np.eye(4)[:1], top_k=10)[0].shape == (1, 4)


def test_camera_ids_from_names():
    assert camera_id("/x/0002_c3s1_000451_03.jpg") == 2
    assert camera_id("/x/0001_c2_f0046182.jpg") == 1
    assert camera_id("/x/holiday.jpg") == -1
