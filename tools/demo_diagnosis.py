"""Re-runs one row of docs/experiments/demo_diagnosis.md: a demo stage with one
setting changed, in a fresh process, printing its mAP.

    # the demo's data, random init and both teachers first:
    KERAS_BACKEND=tensorflow keras-pass demo --output_dir /tmp/demo
    # fine-tuning from one start with a changed setting:
    KERAS_BACKEND=tensorflow python tools/demo_diagnosis.py finetune /tmp/demo \
        --start pass --set warmup_epochs=1 --set base_lr=0.02 --seed 1
    # pre-training with changed view augmentations, then fine-tuning from it:
    KERAS_BACKEND=tensorflow python tools/demo_diagnosis.py pretrain /tmp/demo /tmp/pt_dino_aug \
        --views dino
    KERAS_BACKEND=tensorflow python tools/demo_diagnosis.py finetune /tmp/demo \
        --preset /tmp/pt_dino_aug/teacher_preset

`--set KEY=VALUE` overrides an entry of the demo's fine-tuning (or, for
`pretrain`, pre-training) settings, `DEMO_CONFIGS["full"]`; values are
Python literals. Prints one JSON line with the settings and the results.
"""

import argparse
import ast
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _overrides(pairs):
    settings = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            settings[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            settings[key] = value
    return settings


def _config(args, section):
    from keras_pass.recipes.demo import DEMO_CONFIGS

    config = DEMO_CONFIGS["quick" if args.quick else "full"]
    return {**config, section: {**config[section], **_overrides(args.set)}}


def finetune(args):
    from keras_pass.recipes.demo import _finetune, _summary

    config = _config(args, "finetune")
    preset = args.preset or {
        "random_init": os.path.join(args.demo_dir, "random_init_preset"),
        "pass": os.path.join(args.demo_dir, "pretrain_pass", "teacher_preset"),
        "dino": os.path.join(args.demo_dir, "pretrain_dino", "teacher_preset"),
    }[args.start]
    output_dir = args.output_dir or tempfile.mkdtemp(prefix="diagnosis_")
    results = _finetune(config, os.path.join(args.demo_dir, "data", "market1501"), preset,
                        output_dir, args.seed)
    return {"preset": preset, "finetune": config["finetune"], **_summary(results)}


def pretrain(args):
    from keras_pass.recipes.demo import _pretrain_config, demo_view_augmentations, knn_results, _summary
    from keras_pass.models.backbone import PASSBackbone
    from keras_pass.pretraining.augment import dino_view_augmentations
    from keras_pass.recipes.pretrain import pretrain as run_pretraining
    from keras_pass.reid.datasets import market1501

    config = _config(args, "pretrain")
    pretrain_config = _pretrain_config(config, args.data or os.path.join(args.demo_dir, "data", "luperson"),
                                       args.output_dir, args.seed, args.objective)
    views = {"dino": dino_view_augmentations(config["blur_scale"]),
             "demo": demo_view_augmentations(config)}[args.views]
    pretrain_config.view_augmentations = views
    run_pretraining(pretrain_config)
    teacher = PASSBackbone.from_preset(os.path.join(args.output_dir, "teacher_preset"))
    knn = _summary(knn_results(teacher, market1501(os.path.join(args.demo_dir, "data", "market1501"))))
    return {"pretrain": config["pretrain"], "views": args.views, "objective": args.objective, "knn": knn}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    tune = commands.add_parser("finetune")
    tune.add_argument("demo_dir")
    tune.add_argument("--start", choices=("random_init", "pass", "dino"), default="pass")
    tune.add_argument("--preset", help="fine-tune this preset instead of a demo start")
    tune.add_argument("--output_dir")
    train = commands.add_parser("pretrain")
    train.add_argument("demo_dir")
    train.add_argument("output_dir")
    train.add_argument("--objective", choices=("pass", "dino"), default="pass")
    train.add_argument("--data", help="unlabeled image folder instead of the demo's")
    train.add_argument("--views", choices=("demo", "dino"), default="demo",
                       help="demo: colour-preserving views; dino: the release's")
    for command in (tune, train):
        command.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
        command.add_argument("--seed", type=int, default=0)
        command.add_argument("--quick", action="store_true", help="the quick demo's settings")
    args = parser.parse_args(argv)
    row = (finetune if args.command == "finetune" else pretrain)(args)
    print(json.dumps({"seed": args.seed, **row}))


if __name__ == "__main__":
    main()
