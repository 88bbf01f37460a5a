import numpy as np
from PIL import Image

from keras_pass.models.backbone import PASSBackbone
from keras_pass.cli.attention import main
from tests.helpers import TINY_BACKBONE


def test_writes_the_picture_and_prints_shares(tmp_path, capsys):
    PASSBackbone(**TINY_BACKBONE).save_to_preset(str(tmp_path / "preset"))
    for i in range(3):
        pixels = np.random.default_rng(i).integers(0, 255, (80, 40, 3), dtype=np.uint8)
        (tmp_path / "images").mkdir(exist_ok=True)
        Image.fromarray(pixels).save(tmp_path / "images" / f"{i}.jpg")
    out = tmp_path / "attention.png"
    assert main([str(tmp_path / "preset"), str(tmp_path / "images"), str(out), "--num-images", "2"]) == 0
    assert Image.open(out).size[0] > 100
    printed = capsys.readouterr().out
    assert "PART1" in printed and "PART3" in printed and "chance 50%" in printed


def test_missing_preset_is_a_one_line_error(tmp_path, capsys):
    from keras_pass.cli.main import main as keras_pass_main

    assert keras_pass_main(["attention", str(tmp_path / "nope"), str(tmp_path), str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("keras-pass attention: error: Expected") and len(err.strip().splitlines()) == 1
