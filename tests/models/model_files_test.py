import builtins

import pytest

from keras_pass.models.model_files import check_file


def test_a_readable_file_passes(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"x")
    assert check_file(str(path), "a model") == str(path)


@pytest.mark.parametrize("make, reason", [
    (lambda path: None, "no such file"),
    (lambda path: path.mkdir(), "a folder, not a file"),
])
def test_missing_files_and_folders_are_named(tmp_path, make, reason):
    path = tmp_path / "model.keras"
    make(path)
    with pytest.raises(ValueError, match=rf"^Expected a model\. Received: source={path} \({reason}\)$"):
        check_file(str(path), "a model")


def test_an_unreadable_file_is_named(tmp_path, monkeypatch):
    path = tmp_path / "model.pth"
    path.write_bytes(b"x")
    real_open = builtins.open

    def denied(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", denied)  # root reads every file: chmod cannot show it
    with pytest.raises(ValueError, match=r"checkpoint=.*model\.pth \(unreadable: Permission denied\)$"):
        check_file(str(path), "a checkpoint", name="checkpoint")
