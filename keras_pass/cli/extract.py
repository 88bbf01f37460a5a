"""`keras-pass extract MODEL DATA OUTPUT_DIR`: images -> L2-normalised `.npy` features + ids/cams.

    keras-pass extract MODEL DATA OUTPUT_DIR [--dataset market1501]

MODEL: a saved `ReIDModel` (`final.keras`, optionally `--weights
best.weights.h5`), a backbone preset (directory or name: concat(CLS, mean
PART) features), or an official `.pth` (fine-tuned: its BNNeck model;
pre-trained: its backbone; needs torch). DATA: a dataset root
(`--dataset market1501|msmt17|dukemtmc|folder`, splits query + gallery by
default) or, with `--dataset images`, one `<pid>/<camid>_*.jpg` folder or
`path,pid,camid` CSV (split name `images`).
"""

from keras_pass import io
from keras_pass.cli.arguments import ArgumentParser, check_output_path, positive_int, size_pair
from keras_pass.data.formats import IMAGE_FORMATS_HELP
from keras_pass.data.images import check_images
from keras_pass.loading import load_model as load
from keras_pass.reid.datasets import FOLDER_LAYOUT, load_dataset, load_folder
from keras_pass.reid.features import extract_features, save_feature_set


def build_parser():
    parser = ArgumentParser(prog="keras-pass extract", description=f"{__doc__.splitlines()[0]} {IMAGE_FORMATS_HELP}")
    parser.add_argument("model", help=".keras file, preset dir/name or official .pth")
    parser.add_argument("data", help="dataset root, image folder or CSV")
    parser.add_argument("output_dir", help="where <split>_features.npy etc. are written")
    parser.add_argument("--dataset", default="market1501",
                        choices=["market1501", "msmt17", "dukemtmc", "folder", "images"],
                        help=f"layout of DATA; images: {FOLDER_LAYOUT} (not a plain image folder)")
    parser.add_argument("--splits", nargs="+", default=None,
                        help="default: query gallery (or 'images' with --dataset images)")
    parser.add_argument("--weights", help="a .weights.h5 to load into a .keras model")
    parser.add_argument("--image_size", type=size_pair, metavar="H,W",
                        help="default: the model's native size")
    parser.add_argument("--batch_size", type=positive_int, default=128)
    parser.add_argument("--arch", help="architecture of a .pth (default: inferred from its shapes)")
    parser.add_argument("--stride", type=positive_int, help="patch stride (default: the model's)")
    parser.add_argument("--test_feature", choices=("before", "after"),
                        help="for official fine-tuned .pth checkpoints")
    return parser


def load_model(source, weights=None, arch=None, stride=None, test_feature=None, image_size=None):
    """A ReIDModel or PASSBackbone from a .keras, a preset or a .pth (the
    one loader, `keras_pass.loading.load_model`)."""
    return load(source, weights=weights, test_feature=test_feature, image_size=image_size,
                stride=stride, arch=arch)


def main(argv=None):
    args = build_parser().parse_args(argv)

    image_size = tuple(args.image_size) if args.image_size else None
    check_output_path(args.output_dir, "output_dir")
    if args.dataset == "images":
        splits = {"images": load_folder(args.data)}
    else:
        dataset = load_dataset(args.dataset, args.data, verbose=True)
        unknown = sorted(set(args.splits or ()) - {"train", "query", "gallery"})
        if unknown:
            raise ValueError(f"Expected --splits among train, query, gallery. Received: {unknown}")
        splits = {name: getattr(dataset, name) for name in args.splits or ("query", "gallery")}
    for name, records in splits.items():  # every split before the first feature
        check_images(records.paths, f"split '{name}'")
    model = load_model(args.model, args.weights, args.arch, args.stride, args.test_feature,
                       image_size)
    features = {}
    for name, records in splits.items():
        print(f"{name}: {len(records)} images")
        features[name] = extract_features(model, records.paths, image_size, args.batch_size)
    with io.run_folder(args.output_dir):
        for name, records in splits.items():
            save_feature_set(args.output_dir, name, features[name], records)
    print(f"wrote features of {', '.join(splits)} to {args.output_dir}")
    return 0
