"""Bad inputs to every `keras-pass` command: exit status 2, one line on
stderr naming the argument or the file, and no output folder left behind.

In-process through `keras_pass.cli.main.main` (shared module-scope fixtures:
a tiny Market-1501 folder with a truncated and an empty JPEG, a tiny preset,
tiny feature files, broken checkpoints, symbolic link loops, paths of the
wrong kind, overlapping splits), plus `ACCEPTED`: unusual inputs that must
work (exit 0, at most one warning line), and one subprocess test of the
absl usage errors as a user sees them. docs/reliability.md sums them up.
"""

import json
import os
import shlex
import shutil
import subprocess
import sys
import zipfile

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


def write_bad_model_files(root, preset):
    """Model files that are missing, truncated or corrupt, or of the wrong kind."""
    import keras
    import torch

    from keras_pass.models.backbone import PASSBackbone

    models = root / "model_files"
    models.mkdir()
    PASSBackbone.from_preset(str(preset)).save(str(models / "truncated.keras"))
    truncate(models / "truncated.keras")
    keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save(str(models / "sequential.keras"))
    with zipfile.ZipFile(models / "not_a_model.keras", "w") as archive:
        archive.writestr("notes.txt", "no model here")
    (models / "folder.keras").mkdir()
    shutil.copytree(preset, models / "truncated_weights")
    truncate(models / "truncated_weights" / "model.weights.h5")
    state = {"pos_embed": torch.zeros(1, 9, 32), "cls_token": torch.zeros(1, 1, 32)}
    torch.save(state, models / "truncated.pth")
    truncate(models / "truncated.pth")
    torch.save([torch.zeros(1)], models / "list.pth")
    torch.save({"epoch": torch.zeros(1)}, models / "no_backbone.pth")
    return {"models": models}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Every input of the table, written once."""
    import keras

    from keras_pass.models.backbone import PASSBackbone
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
    return {**_walk_and_kind_inputs(root, market), **_overlapping_markets(root), "root": root,
        "market": market, "bad_market": bad_market, "bad_query": query[0],
        "bad_gallery": gallery[0], "garbled_market": garbled_market, "undecodable": undecodable, "preset": preset,
        "no_weights": no_weights, "garbage_config": garbage_config, "features": features,
        "no_paths": no_paths, "a_file": a_file, "query_image": os.path.join(market, "query", query[0]),
        "bad_query_image": os.path.join(bad_market, "query", query[0]), **write_bad_model_files(root, preset),
    }


def _walk_and_kind_inputs(root, market):
    """Folders with symbolic link loops, files of every listed format, paths
    of the wrong kind (issue 25)."""
    links = {"loop_gallery": ("loop", "."), "deep_loop_gallery": ("a/b/up", "../.."),
             "file_loop_gallery": ("self.jpg", "self.jpg"), "dangling_gallery": ("gone.jpg", "missing.jpg")}
    for folder, (link, target) in links.items():
        write_image(str(root / folder / "a" / "b" / "p.jpg"), 1)
        os.symlink(target, root / folder / link)
    for i, extension in enumerate(("bmp", "gif", "webp", "PNG")):
        write_image(str(root / "formats" / f"x{i}.{extension}"), i)
    (root / "formats" / "folder.jpg").mkdir()  # a folder named like an image: not listed
    (root / "only_folder.jpg" / "inside.txt").parent.mkdir()
    (root / "only_folder.jpg" / "inside.txt").write_text("no image here")
    plain = root / "plain_images"
    for i in range(3):
        write_image(str(plain / f"{i}.jpg"), i)
    few = root / "two_bad_one_good"
    write_image(str(few / "good.jpg"), 0)
    (few / "empty.jpg").write_bytes(b"")
    (few / "text.jpg").write_text("not an image")
    os.symlink(root / "missing_target.jpg", root / "dangling.jpg")
    return {"plain_images": plain, "formats": root / "formats", "two_bad_one_good": few,
            "an_image": str(plain / "0.jpg"),
            "dangling": root / "dangling.jpg", **{name: root / name for name in links}}


def _overlapping_markets(root):
    """Market-1501 copies whose train split shares images with query: one
    under the query's own name (shared id and content), one renamed to a
    train identity (shared content only)."""
    made = {}
    for kind in ("same_name", "renamed"):
        market, _ = make_market1501(root / f"overlap_{kind}")
        query = sorted(os.listdir(os.path.join(market, "query")))[0]
        target = query if kind == "same_name" else "0002_c1s1_999999_09.jpg"
        shutil.copy(os.path.join(market, "query", query), os.path.join(market, "bounding_box_train", target))
        made[f"overlap_{kind}"] = market
    return made


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
    # Model files: missing, truncated or corrupt, wrong kind, each named with what is wrong.
    ("extract_truncated_keras", "extract {models}/truncated.keras {market} {out}",
     "source={models}/truncated.keras (truncated or corrupt"),
    ("index_truncated_keras", "index {market}/query {out} --model {models}/truncated.keras",
     "source={models}/truncated.keras (truncated or corrupt"),
    ("extract_keras_of_another_model", "extract {models}/sequential.keras {market} {out}",
     "source={models}/sequential.keras (wrong kind: a Sequential)"),
    ("extract_zip_not_a_keras_model", "extract {models}/not_a_model.keras {market} {out}",
     "source={models}/not_a_model.keras (truncated or corrupt"),
    ("extract_keras_is_a_folder", "extract {models}/folder.keras {market} {out}",
     "source={models}/folder.keras (a folder, not a file)"),
    ("extract_truncated_preset_weights", "extract {models}/truncated_weights {market} {out}",
     "source={models}/truncated_weights/model.weights.h5 (truncated or corrupt: truncated file"),
    ("finetune_truncated_preset_weights", "finetune --data_root={market} --output_dir={out} "
     "--preset={models}/truncated_weights", "model.weights.h5 (truncated or corrupt: truncated file"),
    ("extract_folder_not_a_preset", "extract {market} {market} {out}", "preset={market}"),
    ("extract_file_of_no_model_kind", "extract {a_file} {market} {out}", "source={a_file} (a file of neither kind)"),
    ("extract_missing_preset", "extract {root}/missing_preset {market} {out}",
     "source={root}/missing_preset (no such file or folder)"),
    ("extract_missing_pth", "extract {root}/missing.pth {market} {out}", "source={root}/missing.pth (no such file)"),
    ("extract_truncated_pth", "extract {models}/truncated.pth {market} {out}",
     "source={models}/truncated.pth (truncated or corrupt"),
    ("extract_pth_not_a_dict", "extract {models}/list.pth {market} {out}",
     "source={models}/list.pth (wrong kind: a list)"),
    ("extract_pth_without_backbone", "extract {models}/no_backbone.pth {market} {out}",
     "source={models}/no_backbone.pth (wrong kind: keys such as ['epoch'])"),
    # one flag spelling: the hyphenated one is read as the underscored one and named so
    ("index_hyphenated_batch_size_0", "index {market}/query {out} --model {preset} --batch-size=0", "--batch_size"),
    ("finetune_hyphenated_num_instances_0", "finetune --data_root={market} --output-dir={out} --num-instances=0",
     "num_instances"),
    # KERAS_BACKEND=...: checked before anything (`keras_pass.startup`), whatever the command
    ("unknown_backend", "KERAS_BACKEND=foo presets", "KERAS_BACKEND=foo"),
    ("unknown_backend_upper_case", "KERAS_BACKEND=JAX extract {preset} {market} {out}", "jax, tensorflow"),
    # issue 25: links, folders posing as files, formats, overlapping splits
    ("index_file_symlink_loop", "index {file_loop_gallery} {out} --model {preset}", "self.jpg (a symbolic link"),
    ("index_dangling_symlink", "index {dangling_gallery} {out} --model {preset}", "gone.jpg (a symbolic link"),
    ("index_gallery_is_an_image", "index {an_image} {out} --model {preset}", "0.jpg (an image file)"),
    ("index_gallery_is_binary", "index {root}/nan.pth {out} --model {preset}", "nan.pth (a binary file)"),
    ("index_gallery_dangling_link", "index {dangling} {out} --model {preset}", "dangling.jpg (a symbolic link"),
    ("index_folder_named_like_image", "index {root}/only_folder.jpg {out} --model {preset}", "only_folder.jpg"),
    ("pretrain_data_is_an_image", "pretrain --data_dir={an_image} --output_dir={out} " + TINY_PRETRAIN,
     "0.jpg (an image file)"),
    ("pretrain_data_is_binary", "pretrain --data_dir={root}/nan.pth --output_dir={out} " + TINY_PRETRAIN,
     "nan.pth (a binary file)"),
    ("pretrain_data_dangling_link", "pretrain --data_dir={dangling} --output_dir={out} " + TINY_PRETRAIN,
     "dangling.jpg (a symbolic link"),
    ("pretrain_too_few_after_checks", "pretrain --data_dir={two_bad_one_good} --output_dir={out} "
     + TINY_PRETRAIN, "batch_size=2"),
    ("search_query_is_a_folder", "search {out} {plain_images}", "plain_images (a folder)"),
    ("search_query_folder_named_jpg", "search {out} {root}/only_folder.jpg", "only_folder.jpg (a folder)"),
    ("search_query_dangling_link", "search {out} {dangling}", "dangling.jpg (a symbolic link"),
    ("attention_folder_named_like_image", "attention {preset} {root}/only_folder.jpg {out}.png", "only_folder.jpg"),
    ("attention_images_is_an_image", "attention {preset} {an_image} {out}.png", "(an image file)"),
    ("shard_source_is_an_image", "shard {an_image} {out}", "(an image file)"),
    ("extract_images_plain_folder", "extract {preset} {plain_images} {out} --dataset images", "<pid>/<camid>_*.jpg"),
    ("extract_images_market_folder", "extract {preset} {market}/query {out} --dataset images", "<pid>/<camid>_*.jpg"),
    ("finetune_query_in_train", "finetune --data_root={overlap_same_name} --output_dir={out} --preset={preset}",
     "allow_overlap"),
    ("finetune_query_copied_renamed", "finetune --data_root={overlap_renamed} --output_dir={out} "
     "--preset={preset}", "1 query/gallery images equal to train images"),
    ("usl_query_in_train", "usl --data_root={overlap_same_name} --output_dir={out} --preset={preset}",
     "allow_overlap"),
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


# Unusual inputs that must work: (id, arguments, images indexed, text of the one warning or None)
ACCEPTED = [
    ("index_directory_symlink_loop", "index {loop_gallery} {out} --model {preset}", 1, "reached again"),
    ("index_loop_two_levels_down", "index {deep_loop_gallery} {out} --model {preset}", 1, "a/b/up"),
    ("index_bmp_gif_webp_png", "index {formats} {out} --model {preset}", 4, None),
]


@pytest.mark.parametrize("case, template, count, warning", ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_accepted_input(case, template, count, warning, files, capsys, caplog):
    out = files["root"] / f"out_{case}"
    with caplog.at_level("WARNING", logger="keras_pass"):
        status = main(shlex.split(template.format(out=out, **files)))
    err = capsys.readouterr().err
    assert status == 0, err
    with open(out / "paths.txt") as handle:
        assert len(handle.read().splitlines()) == count
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ([] if warning is None else warnings[:1]) and all("\n" not in w for w in warnings)
    assert warning is None or warning in warnings[0]
    shutil.rmtree(out)


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


@pytest.mark.parametrize("command", ["extract", "index", "search", "attention", "shard"])
def test_image_readers_help_names_the_formats(command):
    import importlib

    from keras_pass.data.formats import IMAGE_FORMATS_HELP

    text = importlib.import_module(f"keras_pass.cli.{command}").build_parser().format_help()
    assert IMAGE_FORMATS_HELP in " ".join(text.split())


def test_pretrain_help_names_the_formats():
    import dataclasses

    from keras_pass.data.formats import IMAGE_FORMATS_HELP
    from keras_pass.recipes.pretrain import PretrainConfig

    data = next(f for f in dataclasses.fields(PretrainConfig) if f.name == "data")
    assert IMAGE_FORMATS_HELP in data.metadata["help"]


def test_shard_leaves_out_bad_files_in_one_line(files, capsys):
    out = files["root"] / "out_shard_bad_files"
    assert main(["shard", str(files["two_bad_one_good"]), str(out), "--shard-size", "4"]) == 0
    left_out = [line for line in capsys.readouterr().out.splitlines() if "left out" in line]
    assert len(left_out) == 1 and "2 of 3 images unreadable" in left_out[0] and "shards.json" in left_out[0]
    with open(out / "shards.json") as handle:
        index = json.load(handle)
    assert index["num_images"] == 1
    assert sorted(os.path.basename(p) for p in index["skipped"]) == ["empty.jpg", "text.jpg"]
    shutil.rmtree(out)
