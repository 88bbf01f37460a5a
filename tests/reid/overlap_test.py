import os
import shutil

import pytest

from keras_pass.reid.datasets import generic, market1501
from keras_pass.reid.overlap import check_split_overlap, shared_ids, shared_images
from tests.helpers import make_market1501, once_under_tensorflow, write_image

# `keras_pass.reid.overlap` compares file lists, no Keras op: the backend cannot change what is
# checked here.
pytestmark = once_under_tensorflow


def test_a_sound_market_has_no_overlap_and_its_markers_are_not_ids(tmp_path):
    """The miniature Market-1501 holds junk (-1) and distractors (0000) in
    its gallery: they stay, and are not reported."""
    dataset = market1501(make_market1501(tmp_path)[0])
    assert 0 in dataset.gallery.pids
    assert shared_ids(dataset) == [] and shared_images(dataset) == []
    assert check_split_overlap(dataset) is dataset


def test_ids_are_compared_before_train_relabelling(tmp_path):
    root, _ = make_market1501(tmp_path)
    query = sorted(os.listdir(os.path.join(root, "query")))[0]  # 0001_...: id 1, not a train label 1
    write_image(os.path.join(root, "bounding_box_train", query), 99)  # same name, other content
    dataset = market1501(root)
    assert shared_ids(dataset) == [1] and shared_images(dataset) == []
    with pytest.raises(ValueError, match=r"Expected train and query/gallery .*allow_overlap.*1 person ids \(e.g. 1\)"):
        check_split_overlap(dataset)


def test_copies_are_found_by_content_whatever_their_name(tmp_path, capsys):
    root, _ = make_market1501(tmp_path)
    gallery = sorted(f for f in os.listdir(os.path.join(root, "bounding_box_test")) if f.startswith("0003"))
    copies = {gallery[0]: "0002_c1s1_900000_01.jpg", gallery[1]: "0007_c2s1_900000_02.jpg"}
    for source, name in copies.items():
        shutil.copy(os.path.join(root, "bounding_box_test", source), os.path.join(root, "bounding_box_train", name))
    dataset = market1501(root)
    pairs = [(os.path.basename(a), os.path.basename(b)) for a, b in shared_images(dataset)]
    assert sorted(pairs) == sorted((name, source) for source, name in copies.items())
    assert shared_ids(dataset) == []
    with pytest.raises(ValueError, match="2 query/gallery images equal to train images"):
        check_split_overlap(dataset)
    assert check_split_overlap(dataset, allow_overlap=True) is dataset  # reported, then allowed
    assert "2 query/gallery images equal to train images" in capsys.readouterr().out


def test_generic_layout_id_zero_is_a_person(tmp_path):
    for seed, split in enumerate(("train", "query", "gallery")):
        write_image(str(tmp_path / split / "0" / f"1_{split}.jpg"), seed)
    assert shared_ids(generic(str(tmp_path))) == [0]
