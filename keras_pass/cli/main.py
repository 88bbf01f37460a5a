"""`keras-pass` command line: one entry point over the tools and examples."""

import os
import sys

from keras_pass.cli import (
    attention,
    cluster_contrast,
    convert,
    demo,
    evaluate,
    export,
    extract,
    finetune,
    index,
    pretrain,
    search,
    shard,
    visualize,
)
from keras_pass.cli.arguments import ArgumentParser
from keras_pass.errors import EXIT_BAD_INPUT, EXIT_NON_FINITE_LOSS, NonFiniteLossError
from keras_pass.models.preset_io import list_presets, presets_home
from keras_pass.recipes.demo import DURATIONS as DEMO_DURATIONS
from keras_pass.startup import check_backend


def _presets(argv):
    parser = ArgumentParser(prog="keras-pass presets", description="List named presets.")
    parser.parse_args(argv)

    print(f"preset home: {presets_home()}")
    for name, meta in list_presets().items():
        state = "local" if meta["available"] else "not converted"
        print(f"{name:42s} {meta['params'] / 1e6:6.1f}M  {state:13s} {meta['description']}")
    return 0


COMMANDS = {
    "demo": (demo.main, "the main job: PASS end to end on generated pedestrians "
             f"({DEMO_DURATIONS['full']}; --quick: {DEMO_DURATIONS['quick']}; --long: {DEMO_DURATIONS['long']})"),
    "convert": (convert.main, "convert an official PyTorch checkpoint into a preset"),
    "presets": (_presets, "list the named presets and whether they are converted"),
    "pretrain": (pretrain.main, "PASS pre-training on an image folder (examples/pretrain_luperson.py)"),
    "finetune": (finetune.main, "supervised ReID fine-tuning (examples/finetune_market1501.py)"),
    "usl": (cluster_contrast.main_usl, "unsupervised ReID with cluster contrast (examples/usl_market1501.py)"),
    "uda": (cluster_contrast.main_uda, "cluster-contrast domain adaptation (examples/uda_market1501.py)"),
    "extract": (extract.main, "extract ReID features of a dataset or folder to .npy"),
    "evaluate": (evaluate.main, "CMC / mAP / mINP of extracted features, optional re-ranking"),
    "visualize": (visualize.main, "ranked-list picture of queries and their top-k matches"),
    "export": (export.main, "export the feature extractor (SavedModel, ONNX, LiteRT) with a parity check"),
    "index": (index.main, "embed a gallery folder into a searchable index (resumable)"),
    "search": (search.main, "nearest gallery images of query images, with a same-person threshold"),
    "shard": (shard.main, "convert an image folder into TFRecord shards for LUPerson-scale pre-training"),
    "attention": (attention.main, "[CLS]/[PART] attention maps of a preset and their region shares"),
}


def main(argv=None):

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = ArgumentParser(
        prog="keras-pass",
        description="PASS part-aware pre-training and ReID in Keras 3.",
        epilog="Run `keras-pass COMMAND --help` for the options of a command. Flags are spelt "
               "--batch_size=8 (or --batch-size 8).",
    )
    parser.add_argument(
        "command", choices=sorted(COMMANDS),
        help="; ".join(f"{name}: {text}" for name, (_, text) in sorted(COMMANDS.items())),
    )
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    command = argv[0]
    try:
        check_backend()  # also run by `import keras_pass`, which exits 2 before any command
        parser.parse_args(argv[:1])
        return COMMANDS[command][0](argv[1:])
    except NonFiniteLossError as error:
        return _report(command, "stopped", error, EXIT_NON_FINITE_LOSS)
    except (ValueError, OSError) as error:  # bad input: one line, no traceback
        return _report(command, "error", error, EXIT_BAD_INPUT)


def example_main(command):
    """`python examples/X.py ...`: exactly `keras-pass COMMAND ...`."""
    sys.exit(main([command, *sys.argv[1:]]))


def _report(command, kind, error, status):
    if os.environ.get("KERAS_PASS_TRACEBACK"):
        raise error
    message = " ".join(str(error).split()) or type(error).__name__  # one line, whatever it says
    print(f"keras-pass {command}: {kind}: {message} (KERAS_PASS_TRACEBACK=1 shows the traceback)",
          file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
