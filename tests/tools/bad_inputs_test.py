"""Bad inputs to every `keras-pass` command: exit status 2, one line on
stderr naming the argument or the file, and no output folder left behind.

In-process through `keras_pass.cli.main.main` (shared module-scope fixtures:
a tiny Market-1501 folder with a truncated and an empty JPEG, a tiny preset,
tiny feature files, broken checkpoints), plus one subprocess test of the
absl usage errors as a user sees them.
"""

import os
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest

from keras_pass.cli.main import main
from tests.helpers import REPO_ROOT, TINY_BACKBONE, garble_image, make_market1501, once_under_tensorflow, write_image

TINY_PRETRAIN = ("\"--backbone_overrides={{'hidden_dim': 32, 'num_layers': 2, 'num_heads': 2, 'mlp_dim': 64}}\" "
                 "--image_size=64,32 --batch_size=2 --epochs=1 --out_dim=16 --head_hidden_dim=16 "
                 "--bottleneck_dim=8 --verbose=0")


def truncate(path, keep=0.5):
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[: int(len(data) * keep)])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Every input of the table, written once."""
    import keras

    from keras_pass import PASSBackbone
    from keras_pass.reid.datasets import market1501
    from keras_pass.reid.features import save_feature_set

    root = tmp_path_factory.mktemp("bad_inputs")
    market, _ = make_market1501(root / "good")
    bad_market, _ = make_market1501(root / "bad")
    query = sorted(os.listdir(os.path.join(bad_market, "query")))
    truncate(os.path.join(bad_market, "query", query[0]))
    gallery = sorted(f for f in os.listdir(os.path.join(bad_market, "bounding_box_test")) if f.startswith("0001"))
    open(os.path.join(bad_market, "bounding_box_test", gallery[0]), "wb").close()
    garbled_market, _ = make_market1501(root / "garbled")  # sound headers, corrupt data
    for name in os.listdir(os.path.join(garbled_market, "bounding_box_train")):
        if name.endswith(".jpg"):
            garble_image(os.path.join(garbled_market, "bounding_box_train", name))
    undecodable = root / "undecodable"
    for i in range(3):
        write_image(str(undecodable / f"{i}.jpg"), i)
        truncate(str(undecodable / f"{i}.jpg"), 0.3 * i)

    keras.utils.set_random_seed(0)
    preset = root / "preset"
    PASSBackbone(**TINY_BACKBONE).save_to_preset(str(preset))
    no_weights = root / "no_weights"
    shutil.copytree(preset, no_weights)
    os.remove(no_weights / "model.weights.h5")
    garbage_config = root / "garbage_config"
    shutil.copytree(preset, garbage_config)
    (garbage_config / "config.json").write_text("{not json")

    features = root / "features"
    dataset = market1501(market)
    rng = np.random.default_rng(0)
    for split in ("query", "gallery"):
        records = getattr(dataset, split)
        save_feature_set(str(features), split, rng.normal(size=(len(records), 8)).astype("float32"), records)
    no_paths = root / "features_no_paths"
    shutil.copytree(features, no_paths)
    os.remove(no_paths / "gallery_paths.txt")

    a_file = root / "a_file"
    a_file.write_text("not a folder")
    (root / "empty.pth").write_bytes(b"")
    (root / "garbage.pth").write_bytes(b"this is not a torch file")
    import torch

    nan_state = {"pos_embed": torch.full((1, 9, 32), float("nan")), "cls_token": torch.zeros(1, 1, 32)}
    torch.save(nan_state, root / "nan.pth")
    return {
        "root": root, "market": market, "bad_market": bad_market, "bad_query": query[0],
        "bad_gallery": gallery[0], "garbled_market": garbled_market, "undecodable": undecodable, "preset": preset,
        "no_weights": no_weights, "garbage_config": garbage_config, "features": features,
        "no_paths": no_paths, "a_file": a_file, "query_image": os.path.join(market, "query", query[0]),
        "bad_query_image": os.path.join(bad_market, "query", query[0]),
    }


# (id, arguments with {placeholders} from `files` and {out} a fresh path, text the line must name)
CASES = [
    ("finetune_num_instances_0", "finetune --data_root={market} --output_dir={out} --num_instances=0", "num_instances"),
    ("finetune_unknown_flag", "finetune --data_root={market} --output_dir={out} --bogus=1", "bogus"),
    ("finetune_epochs_0", "finetune --data_root={market} --output_dir={out} --epochs=0", "epochs"),
    ("finetune_negative_lr", "finetune --data_root={market} --output_dir={out} --base_lr=-1", "base_lr"),
    ("finetune_lr_nan", "finetune --data_root={market} --output_dir={out} --base_lr=nan", "base_lr"),
    ("finetune_not_an_int", "finetune --data_root={market} --output_dir={out} --batch_size=abc", "batch_size"),
    ("finetune_batch_not_pk", "finetune --data_root={market} --output_dir={out} --batch_size=6 --num_instances=4",
     "num_instances"),
    ("finetune_verbose_5", "finetune --data_root={market} --output_dir={out} --verbose=5", "verbose"),
    ("finetune_output_under_file", "finetune --data_root={market} --output_dir={a_file}/run", "output_dir"),
    ("finetune_missing_data", "finetune --data_root={root}/nothing --output_dir={out}", "nothing"),
    ("finetune_truncated_query", "finetune --data_root={bad_market} --output_dir={out} --preset={preset}",
     "{bad_query}"),
    ("finetune_train_fails_at_decode", "finetune --data_root={garbled_market} --output_dir={out} "
     "--preset={preset} --image_size=64,32 --batch_size=4 --num_instances=2 --verbose=0", "bounding_box_train"),
    ("usl_empty_gallery_file", "usl --data_root={bad_market} --output_dir={out} --preset={preset}", "{bad_gallery}"),
    ("usl_num_instances_0", "usl --data_root={market} --output_dir={out} --num_instances=0", "num_instances"),
    ("uda_momentum_above_1", "uda --data_root={market} --output_dir={out} --momentum=1.5", "momentum"),
    ("pretrain_local_crops_0", "pretrain --data_dir={market} --output_dir={out} --local_crops_per_part=0",
     "local_crops_per_part"),
    ("pretrain_out_dim_0", "pretrain --data_dir={market} --output_dir={out} --out_dim=0", "out_dim"),
    ("pretrain_local_larger", "pretrain --data_dir={market} --output_dir={out} --image_size=64,32 "
     "--local_size=128,64", "local_size"),
    ("pretrain_teacher_momentum", "pretrain --data_dir={market} --output_dir={out} --teacher_momentum=0.9,1.5",
     "teacher_momentum"),
    ("pretrain_nothing_decodes", "pretrain --data_dir={undecodable} --output_dir={out} " + TINY_PRETRAIN,
     "0.jpg"),
    ("extract_batch_size_0", "extract {preset} {market} {out} --batch_size 0", "--batch_size"),
    ("extract_truncated_query", "extract {preset} {bad_market} {out}", "{bad_query}"),
    ("extract_missing_data", "extract {preset} {root}/nothing {out}", "nothing"),
    ("extract_unknown_split", "extract {preset} {market} {out} --splits validation", "splits"),
    ("extract_output_under_file", "extract {preset} {market} {a_file}/features", "output_dir"),
    ("extract_missing_weights", "extract {no_weights} {market} {out}", "model.weights.h5"),
    ("extract_garbage_config", "extract {garbage_config} {market} {out}", "config.json"),
    ("extract_missing_argument", "extract {preset} {market}", "output_dir"),
    ("evaluate_missing_features", "evaluate {root}/nothing", "query_features.npy"),
    ("evaluate_k1_0", "evaluate {features} --rerank --k1 0", "--k1"),
    ("evaluate_output_under_file", "evaluate {features} --output {a_file}/metrics.json", "--output"),
    ("visualize_too_many_queries", "visualize {features} {out}.png --num_queries 1000", "--num_queries"),
    ("visualize_query_index", "visualize {features} {out}.png --queries 99", "--queries"),
    ("visualize_into_folder", "visualize {features} {root}", "output"),
    ("visualize_missing_paths", "visualize {no_paths} {out}.png", "gallery_paths.txt"),
    ("attention_num_images_0", "attention {preset} {market}/query {out}.png --num_images 0", "--num_images"),
    ("attention_truncated_image", "attention {preset} {bad_market}/query {out}.png --num_images 6", "{bad_query}"),
    ("convert_empty_pth", "convert {root}/empty.pth {out} --arch vit_small", "empty.pth"),
    ("convert_not_torch", "convert {root}/garbage.pth {out} --arch vit_small", "garbage.pth"),
    ("convert_nan_weights", "convert {root}/nan.pth {out} --arch vit_small", "pos_embed"),
    ("convert_missing_pth", "convert {root}/missing.pth {out} --arch vit_small", "missing.pth"),
    ("convert_output_under_file", "convert {root}/empty.pth {a_file}/preset --arch vit_small", "output_dir"),
    ("index_truncated_image", "index {bad_market}/query {out} --model {preset}", "{bad_query}"),
    ("index_missing_model", "index {market}/query {out} --model {root}/missing_preset", "missing_preset"),
    ("index_batch_size_0", "index {market}/query {out} --model {preset} --batch_size 0", "--batch_size"),
    ("search_top_k_0", "search {out} {query_image} --top_k 0", "--top_k"),
    ("search_missing_query", "search {out} {root}/missing.jpg", "missing.jpg"),
    ("search_truncated_query", "search {out} {bad_query_image}", "{bad_query}"),
    ("search_threshold_negative", "search {out} {query_image} --threshold -1", "--threshold"),
    ("export_missing_model", "export {root}/missing.keras {out}", "missing.keras"),
    ("presets_unknown_argument", "presets --bogus", "--bogus"),
    ("demo_negative_seed", "demo --output_dir {out} --seed -1", "--seed"),
    ("demo_output_is_file", "demo --output_dir {a_file}", "output_dir"),
    ("unknown_command", "nosuchcommand", "nosuchcommand"),
    # one flag spelling: the hyphenated one is read as the underscored one and named so
    ("index_hyphenated_batch_size_0", "index {market}/query {out} --model {preset} --batch-size=0", "--batch_size"),
    ("finetune_hyphenated_num_instances_0", "finetune --data_root={market} --output-dir={out} --num-instances=0",
     "num_instances"),
    # KERAS_BACKEND=...: checked before anything (`keras_pass.startup`), whatever the command
    ("unknown_backend", "KERAS_BACKEND=foo presets", "KERAS_BACKEND=foo"),
    ("unknown_backend_upper_case", "KERAS_BACKEND=JAX extract {preset} {market} {out}", "jax, tensorflow"),
]


@pytest.mark.parametrize("case, template, named", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, template, named, files, capsys, monkeypatch):
    out = files["root"] / f"out_{case}"
    argv = shlex.split(template.format(out=out, **files))
    while "=" in argv[0] and not argv[0].startswith("-"):  # NAME=value before the command: the environment
        monkeypatch.setenv(*argv.pop(0).split("=", 1))
    status = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert status == 2, err
    assert len(lines) == 1, err
    assert named.format(**files) in lines[0], lines[0]
    assert not os.path.exists(out) and not os.path.exists(f"{out}.png"), "a failed command left output"


def test_table_size():
    assert len(CASES) >= 30


@pytest.mark.slow
@once_under_tensorflow  # absl's flag parsing: no backend involved
def test_absl_usage_errors_as_a_user_sees_them(files):
    """`python -m keras_pass` in a fresh process (TensorFlow's C++ start-up
    lines are written while it loads; the table's cases run in-process):
    exactly one line on stderr, ours, exit 2; nothing on stdout."""
    env = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-m", "keras_pass", "finetune", f"--data_root={files['market']}",
         f"--output_dir={files['root']}/sub", "--no-such-flag=1"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("keras-pass finetune: error:"), result.stderr
    assert "no_such_flag" in lines[0] and result.stdout == "", result.stderr + result.stdout


def test_internal_failures_keep_exit_1(monkeypatch):
    """Only bad input is status 2: a bug is an exception with its traceback."""
    from keras_pass.cli import main as cli_main

    def broken(argv):
        raise KeyError("a bug")

    monkeypatch.setitem(cli_main.COMMANDS, "presets", (broken, ""))
    with pytest.raises(KeyError):
        main(["presets"])
