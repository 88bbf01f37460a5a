"""What pre-training buys when labels are scarce (issue 15's fallback): the
full demo (run or resumed in OUT_DIR), then the demo's fine-tuning from the
random init and from the PASS teacher on the first N% of the labelled train
identities (query and gallery unchanged, same steps), and a table of mAP.

    KERAS_BACKEND=tensorflow python tools/demo_few_labels.py OUT_DIR [--seed 0] [--fractions 1,0.25]

Results: docs/experiments/demo_diagnosis.md (section 5).
"""

import argparse
import math
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def subset_market(market, target, fraction):
    """A copy of the demo's Market-1501 folder (hard links) keeping the first
    `fraction` of the train identities (sorted ids); query and gallery
    unchanged. Returns the number of train identities kept."""
    from keras_pass.reid.datasets import market1501, parse_image_name

    ids = sorted(set(market1501(market).train.pids.tolist()))  # relabelled 0..N-1, in sorted-id order
    kept_count = math.ceil(fraction * len(ids))
    originals = sorted({parse_image_name(p)[0] for p in market1501(market).train.paths})[:kept_count]

    def dropped(folder, names):
        if os.path.basename(folder) != "bounding_box_train":
            return []
        return [n for n in names if n.endswith(".jpg") and parse_image_name(n)[0] not in originals]

    if not os.path.isdir(target):
        shutil.copytree(market, target, ignore=dropped, copy_function=os.link)
    return kept_count


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fractions", default="1,0.25")
    args = parser.parse_args()
    from keras_pass.recipes.demo import DEMO_CONFIGS, _finetune, run_demo

    run_demo(args.output_dir, seed=args.seed)
    config = DEMO_CONFIGS["full"]
    market = os.path.join(args.output_dir, "data", "market1501")
    presets = {"random init": os.path.join(args.output_dir, "random_init_preset"),
               "PASS": os.path.join(args.output_dir, "pretrain_pass", "teacher_preset")}
    rows = []
    for fraction in map(float, args.fractions.split(",")):
        folder = os.path.join(args.output_dir, "few_labels", f"ids_{fraction:g}")
        root = os.path.join(folder, "market1501")
        num_ids = subset_market(market, root, fraction)
        results = {start: _finetune(config, root, preset, os.path.join(folder, start.replace(" ", "_")),
                                    args.seed)["mAP"] for start, preset in presets.items()}
        rows.append((fraction, num_ids, results))
    print("| labelled train ids | random init + FT mAP | PASS + FT mAP | gain |")
    print("|---|---|---|---|")
    for fraction, num_ids, results in rows:
        gain = results["PASS"] - results["random init"]
        print(f"| {num_ids} ({fraction:.0%}) | {100 * results['random init']:.1f} | "
              f"{100 * results['PASS']:.1f} | {100 * gain:+.1f} |")


if __name__ == "__main__":
    main()
