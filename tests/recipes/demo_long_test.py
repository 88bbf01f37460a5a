"""`keras-pass demo --long` (issue 26 item 5): its config, its flag and its
stated duration. Fast: the long demo itself runs for minutes and is not run
here (its measured result: docs/experiments/demo_diagnosis.md section 8)."""

import pytest

from keras_pass.cli import demo as demo_cli
from keras_pass.cli import main as cli_main
from keras_pass.errors import EXIT_BAD_INPUT
from keras_pass.recipes import demo
from keras_pass.recipes.config import check_settings
from keras_pass.recipes.finetune import FinetuneConfig

LONG, FULL = demo.DEMO_CONFIGS["long"], demo.DEMO_CONFIGS["full"]


@pytest.mark.parametrize("objective", ["pass", "dino"])
def test_long_mode_pretraining_config_validates(objective, tmp_path):
    config = demo._pretrain_config(LONG, str(tmp_path / "unlabeled"), str(tmp_path / "out"), 0, objective)
    check_settings(config)
    assert config.epochs * config.steps_per_epoch == 1800


def test_long_mode_finetuning_config_validates(tmp_path):
    check_settings(FinetuneConfig(data_root=str(tmp_path), output_dir=str(tmp_path / "out"),
                                  image_size=LONG["image_size"], stride=LONG["backbone"]["patch_size"],
                                  **LONG["finetune"]))


def test_long_mode_differs_from_full_only_as_documented():
    # 3x the unlabeled people and 3x the pre-training steps (each image seen
    # as often as in the full mode), the warm-up the same fraction of the run.
    assert LONG["data"] == {**FULL["data"], "unlabeled_ids": 3 * FULL["data"]["unlabeled_ids"]}
    steps = {name: c["pretrain"]["epochs"] * c["pretrain"]["steps_per_epoch"] for name, c in (("long", LONG), ("full", FULL))}
    assert steps["long"] == 3 * steps["full"]
    assert LONG["pretrain"]["warmup_epochs"] / LONG["pretrain"]["epochs"] == pytest.approx(
        FULL["pretrain"]["warmup_epochs"] / FULL["pretrain"]["epochs"])
    changed = {"epochs", "warmup_epochs"}
    assert {k: v for k, v in LONG["pretrain"].items() if k not in changed} == {
        k: v for k, v in FULL["pretrain"].items() if k not in changed}
    # The labelled data, model, views and fine-tuning are the full mode's: rows compare.
    assert {k: v for k, v in LONG.items() if k not in ("data", "pretrain")} == {
        k: v for k, v in FULL.items() if k not in ("data", "pretrain")}


def test_quick_and_long_together_are_refused_before_anything_is_written(tmp_path, capsys):
    output_dir = tmp_path / "demo"
    with pytest.raises(ValueError, match="Expected at most one of --quick and --long. Received: --quick --long"):
        demo_cli.main(["--quick", "--long", "--output_dir", str(output_dir)])
    assert cli_main.main(["demo", "--long", "--quick", "--output_dir", str(output_dir)]) == EXIT_BAD_INPUT
    assert "Expected at most one of --quick and --long" in capsys.readouterr().err
    assert not output_dir.exists()


def test_an_unknown_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"Expected mode in \('full', 'quick', 'long'\). Received: mode='longer'"):
        demo.run_demo(str(tmp_path / "demo"), mode="longer")
    assert not (tmp_path / "demo").exists()


@pytest.mark.parametrize("argv", [["demo", "--help"], ["--help"]])
def test_help_texts_state_every_mode_duration(argv, capsys):
    try:
        status = cli_main.main(argv)
    except SystemExit as stop:  # argparse's --help of a command
        status = stop.code
    assert status == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert demo.DURATIONS["long"] in text and "--long" in text
    for mode in demo.MODES:
        assert demo.DURATIONS[mode] in text


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_holding_another_modes_demo_is_refused(tmp_path, overwrite):
    # Its generated data (kept even with overwrite) and finished pre-trainings
    # would be reused: a long demo would run on the full mode's 300 people.
    output_dir = tmp_path / "demo"
    output_dir.mkdir()
    (output_dir / "metrics.json").write_text('{"mode": "full", "seed": 0}')
    with pytest.raises(ValueError, match="Expected an output_dir free of other demos.*holding a full demo of "
                                         "seed 0, asked for long, seed 0"):
        demo.run_demo(str(output_dir), mode="long", overwrite=overwrite)
    with pytest.raises(ValueError, match="holding a full demo of seed 0, asked for full, seed 1"):
        demo.run_demo(str(output_dir), mode="full", seed=1, overwrite=overwrite)
    assert sorted(p.name for p in output_dir.iterdir()) == ["metrics.json"]
