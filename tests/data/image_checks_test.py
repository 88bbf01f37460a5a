"""The one up-front image check (`keras_pass.data.images`): size, magic
bytes and end marker of every file; the readers that use it."""

import logging
import os

import numpy as np
import pytest

from keras_pass.data.images import (
    check_images,
    check_some_image_decodes,
    find_unreadable_images,
    image_file_problem,
    readable_images,
    undecodable_error,
)
from tests.helpers import write_image


def truncate(path, keep=0.5):
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[: int(len(data) * keep)])


@pytest.fixture
def folder(tmp_path):
    """Two sound JPEGs, a sound PNG, a truncated JPEG, a truncated PNG, an
    empty file and a text file named .jpg."""
    for name in ("good0.jpg", "good1.jpg", "good.png", "cut.jpg", "cut.png"):
        write_image(str(tmp_path / name), len(name))
    truncate(tmp_path / "cut.jpg")
    truncate(tmp_path / "cut.png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("hello")
    return tmp_path


def test_problems_are_named(folder):
    assert image_file_problem(folder / "good0.jpg") is None and image_file_problem(folder / "good.png") is None
    assert image_file_problem(folder / "empty.jpg") == "empty file"
    assert "truncated JPEG" in image_file_problem(folder / "cut.jpg")
    assert "truncated PNG" in image_file_problem(folder / "cut.png")
    assert "not a JPEG" in image_file_problem(folder / "text.jpg")
    assert "No such file" in image_file_problem(folder / "missing.jpg")


def test_every_bad_file_is_found_in_order(folder):
    paths = sorted(str(p) for p in folder.iterdir())
    assert [os.path.basename(p) for p, _ in find_unreadable_images(paths)] == [
        "cut.jpg", "cut.png", "empty.jpg", "text.jpg"]


def test_check_images_is_one_error_naming_the_files(folder):
    paths = [str(folder / n) for n in ("good0.jpg", "cut.jpg", "empty.jpg")]
    with pytest.raises(ValueError, match=r"2 of 3 images unreadable: .*cut.jpg .*empty.jpg") as error:
        check_images(paths, "the query set")
    assert "the query set" in str(error.value) and "\n" not in str(error.value)
    assert check_images(paths[:1]) == paths[:1]


def test_readable_images_skips_and_warns(folder, caplog):
    paths = [str(folder / n) for n in ("good0.jpg", "cut.jpg", "good1.jpg", "empty.jpg")]
    with caplog.at_level(logging.WARNING, logger="keras_pass"):
        kept = readable_images(paths, "the train set")
    assert kept == [paths[0], paths[2]]
    assert "2 of 4 images unreadable" in caplog.text and "cut.jpg" in caplog.text
    with pytest.raises(ValueError, match="at least one readable image in the train set"):
        readable_images([paths[1], paths[3]], "the train set")


def test_some_image_decodes_stops_at_the_first(folder):
    good = str(folder / "good0.jpg")
    assert check_some_image_decodes([str(folder / "cut.jpg"), good, str(folder / "empty.jpg")]) == good
    with pytest.raises(ValueError, match="cut.jpg.*empty.jpg"):
        check_some_image_decodes([str(folder / "cut.jpg"), str(folder / "empty.jpg")], "folder")


def test_pretraining_on_a_folder_where_nothing_decodes_is_an_error(folder):
    """It used to wait forever for a readable image."""
    from keras_pass.pretraining.data import make_pass_dataset

    for name in ("good0.jpg", "good1.jpg", "good.png"):
        os.remove(folder / name)
    with pytest.raises(ValueError, match="Expected at least one readable image"):
        make_pass_dataset(str(folder), batch_size=2, global_size=(64, 32), local_size=(32, 16))


def test_fine_tuning_train_set_leaves_bad_files_out(tmp_path, caplog):
    from keras_pass.reid.data import make_train_dataset, readable_train_records
    from keras_pass.reid.datasets import ImageRecords

    paths = []
    for i in range(8):
        paths.append(str(tmp_path / f"{i}.jpg"))
        write_image(paths[-1], i)
    truncate(paths[3])
    open(paths[5], "wb").close()
    records = ImageRecords(tuple(paths), np.arange(8) // 2, np.zeros(8, np.int64))
    with caplog.at_level(logging.WARNING, logger="keras_pass"):
        kept = readable_train_records(records)
    assert kept.paths == tuple(p for i, p in enumerate(paths) if i not in (3, 5))
    assert kept.pids.tolist() == [0, 0, 1, 2, 3, 3]
    assert "3.jpg" in caplog.text and "5.jpg" in caplog.text
    dataset, _ = make_train_dataset(records, (32, 16), batch_size=4, num_instances=2)
    images, pids = next(iter(dataset))  # decodes: no bad file reaches tf.data
    assert images.shape == (4, 32, 16, 3) and np.isfinite(images.numpy()).all()


def test_full_decodes_keep_libjpeg_off_stderr(folder, capfd):
    """libjpeg writes "Corrupt JPEG data: ..." with C stdio (file descriptor
    2): silenced around the checks' own decodes, whose failures are named
    in the error instead."""
    from keras_pass.data.images import decode_problem
    from tests.helpers import garble_image

    garbled = str(folder / "good1.jpg")
    garble_image(garbled)  # sound start and end markers: only a full decode fails
    assert decode_problem(garbled)  # unsilenced, as a reference: libjpeg speaks
    assert "JPEG" in capfd.readouterr().err
    with pytest.raises(ValueError, match="good1.jpg"):
        check_some_image_decodes([garbled])
    assert "good1.jpg" in str(undecodable_error([str(folder / "good0.jpg"), garbled]))
    assert "JPEG" not in capfd.readouterr().err
