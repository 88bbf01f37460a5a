"""`keras-pass` in-process (`main(argv)`): commands, one flag convention,
help texts. The fresh-process view of the same entry point (TensorFlow's
start-up lines, absl's usage errors) is `bad_inputs_test`'s subprocess test."""

import re

import pytest

from keras_pass.cli.arguments import flag_spelling
from keras_pass.cli.main import COMMANDS, main
from tests.helpers import once_under_tensorflow

# The command line's parsing and messages do not depend on the backend.
pytestmark = once_under_tensorflow


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    printed = capsys.readouterr().out
    for command in COMMANDS:
        assert command in printed


def test_unknown_command_is_a_usage_error(capsys):
    assert main(["fly"]) == 2
    assert "invalid choice: 'fly'" in capsys.readouterr().err


def _help(command):
    """`keras-pass COMMAND --help`'s status (argparse exits, absl commands return)."""
    try:
        return main([command, "--help"])
    except SystemExit as exit:
        return exit.code


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_help_uses_one_flag_spelling(command, capsys):
    """Usage names the command as typed, flags are spelt with underscores,
    no old script names."""
    assert _help(command) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"usage: keras-pass {command}"), printed[:200]
    assert not re.search(r"--[a-z0-9]+-[a-z0-9]", printed), re.findall(r"--[a-z0-9]+-[a-z0-9-]+", printed)
    for old in ("extract_features", "visualize_ranking", "visualize_attention", "convert_pass_checkpoint",
                "tools/"):
        assert old not in printed


def test_flag_spelling_is_normalised_once():
    assert flag_spelling(["--batch-size", "8", "--l2-normalize", "--output_dir=a-b", "-h", "x-y",
                          "--allow-overlap=1", "--", "--keep-me"]) == [
        "--batch_size", "8", "--l2_normalize", "--output_dir=a-b", "-h", "x-y", "--allow_overlap=1", "--",
        "--keep-me"]


def test_hyphenated_flags_reach_argparse_and_absl():
    from keras_pass.cli import evaluate, finetune

    args = evaluate.build_parser().parse_args(["features", "--lambda-value", "0.5", "--max-rank=7"])
    assert args.lambda_value == 0.5 and args.max_rank == 7
    with pytest.raises(ValueError, match="Expected --data_root"):
        finetune.main(["--preset", "x", "--feature-fusion=cls_only"])


def test_sizes_are_spelt_as_in_the_recipes():
    from keras_pass.cli import extract

    for given in (["--image_size=64,32"], ["--image-size", "64,32"]):
        assert extract.build_parser().parse_args(["m", "d", "o", *given]).image_size == (64, 32)
    for bad in ("64", "64,0", "a,b"):
        with pytest.raises(ValueError, match="image_size"):
            extract.build_parser().parse_args(["m", "d", "o", f"--image_size={bad}"])


def test_convert_infers_the_architecture():
    from keras_pass.cli import convert

    assert convert.build_parser().parse_args(["a.pth", "out"]).arch is None


def test_pretrain_help_default_precision_is_a_choice(capsys):
    assert main(["pretrain", "--help"]) == 0
    printed = capsys.readouterr().out
    line = printed[printed.index("--precision"):].splitlines()
    choices = re.search(r"\(one of ([^)]*)\)", line[0]).group(1).split(", ")
    default = re.search(r"\(default: (\S+)\)", line[1]).group(1)
    assert default == "float32" and default in choices


def test_bad_dataset_folder_is_one_line_without_traceback(tmp_path, capsys):
    assert main(["finetune", f"--data_root={tmp_path / 'missing'}", "--preset=x"]) == 2
    err = capsys.readouterr().err
    assert "error: Expected a dataset folder" in err and len(err.strip().splitlines()) == 1


def test_presets_lists_the_registry(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KERAS_PASS_HOME", str(tmp_path))
    assert main(["presets"]) == 0
    printed = capsys.readouterr().out
    assert "pass_vit_small_p16_lup" in printed and "not converted" in printed


@pytest.mark.parametrize("command, flag_names", [
    ("usl", ("--eps", "--k1", "--memory_momentum", "--iters", "--stride", "--optimizer", "--padding")),
    ("uda", ("--eps", "multi_neck", "--preset")),
    ("finetune", ("--data_root", "--feature_fusion", "rerank")),
    ("pretrain", ("--data_dir", "--out_dim", "--local_crops_per_part")),
])
def test_recipe_help_lists_the_command_flags(command, flag_names, capsys):
    assert main([command, "--help"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"usage: keras-pass {command}")
    for flag in flag_names:
        assert flag in printed


def test_uda_without_a_source_model_is_one_line(tmp_path, capsys):
    from keras_pass.data.synthetic import write_market1501

    write_market1501(str(tmp_path), num_train_ids=2, num_test_ids=2, num_distractors=0,
                     num_junk=0, image_size=(32, 16))
    assert main(["uda", f"--data_root={tmp_path}"]) == 2
    assert "error: Expected the source-domain model" in capsys.readouterr().err
