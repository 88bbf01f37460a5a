"""CLI flags generated from the recipe configs."""

import dataclasses

import pytest

from keras_pass.cli.config_flags import define_flags, grouped_help, parse_config
from keras_pass.recipes.cluster_contrast import UDAConfig, USLConfig
from keras_pass.recipes.finetune import FinetuneConfig
from keras_pass.recipes.pretrain import PretrainConfig
from tests.helpers import once_under_tensorflow

# Flag definitions and parsing (absl), no Keras op: the backend cannot change what is checked here.
pytestmark = once_under_tensorflow

CONFIGS = (PretrainConfig, FinetuneConfig, USLConfig, UDAConfig)


@pytest.mark.parametrize("config_cls", CONFIGS)
def test_every_setting_is_a_flag_with_help(config_cls):
    flag_values = define_flags(config_cls)
    for field in dataclasses.fields(config_cls):
        name = field.metadata.get("flag", field.name)
        assert name in flag_values, name
        assert field.metadata["help"], field.name
    assert len(list(flag_values)) == len(dataclasses.fields(config_cls))


def test_flags_override_only_when_given():
    config = parse_config(PretrainConfig, ["--data_dir=/d", "--stride=8", "--global_scale=0.3,0.9",
                                           "--precision=mixed_bfloat16", "--objective=dino",
                                           "--backbone_overrides={'hidden_dim': 96}"], "pretrain")
    assert config.data == "/d" and config.stride == 8 and config.global_scale == (0.3, 0.9)
    assert config.dtype == "mixed_bfloat16" and config.objective == "dino"
    assert config.backbone_overrides == {"hidden_dim": 96}
    defaults = parse_config(PretrainConfig, ["--data_dir=/d"], "pretrain")
    assert defaults == PretrainConfig(data="/d", output_dir="runs/pretrain")
    assert defaults.stride is None and defaults.image_size is None  # the preset's, not 16 / 256x128
    assert parse_config(PretrainConfig, ["--data_dir=/d", "--precision=float32"], "pretrain").dtype is None


@pytest.mark.parametrize("argv, message", [
    (["--epochs=0"], "epochs"),
    (["--image_size=64"], "Expected 2 values for image_size"),
    (["--image_size=a,b"], "Expected int values"),
    (["--objective=ibot"], "objective"),
    (["--base_lr=-1"], "base_lr"),
    (["positional"], "Expected only --flag=value"),
])
def test_bad_values_are_one_line_value_errors(argv, message):
    with pytest.raises(ValueError, match=message) as error:
        parse_config(PretrainConfig, ["--data_dir=/d", *argv], "pretrain")
    assert "\n" not in str(error.value)


def test_required_and_command_defaults():
    with pytest.raises(ValueError, match="Expected --data_root"):
        parse_config(FinetuneConfig, [], "finetune")
    assert parse_config(UDAConfig, ["--data_root=/t"], "uda").output_dir == "runs/uda"
    assert parse_config(USLConfig, ["--data_root=/t"], "usl").multi_neck is False
    assert parse_config(UDAConfig, ["--data_root=/t"], "uda").multi_neck is True


def test_help_is_grouped_with_defaults():
    text = grouped_help("finetune", FinetuneConfig)
    assert text.startswith("usage: keras-pass finetune")
    for group in ("data:", "model:", "schedule:", "optimisation:", "evaluation:"):
        assert f"\n{group}\n" in text
    assert "--warmup_epochs" in text and "(default: 20)" in text
