"""`keras-pass demo --quick`, end to end, through the command line."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import REPO_ROOT


@pytest.mark.slow
def test_quick_demo_runs_and_reports(tmp_path):
    output_dir = str(tmp_path / "demo")
    result = subprocess.run(
        [sys.executable, "-m", "keras_pass", "demo", "--quick", "--output_dir", output_dir],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=1200,
        env={**os.environ, "PYTHONPATH": REPO_ROOT},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for row in ("(a) random init, kNN", "(b) PASS pre-trained, kNN", "(c) PASS + supervised",
                "(d) random init + the same", "part attention inside its region, pass"):
        assert row in result.stdout
    with open(os.path.join(output_dir, "metrics.json")) as handle:
        metrics = json.load(handle)
    for key in ("random_init_knn", "pass_knn", "pass_finetuned", "random_init_finetuned"):
        assert 0.0 < metrics[key]["mAP"] <= 1.0 and 0.0 <= metrics[key]["rank1"] <= 1.0
    for picture in ("attention_random_init.png", "attention_pass.png", "ranking_pass.png",
                    "training_curves.png"):
        assert os.path.getsize(os.path.join(output_dir, "pictures", picture)) > 1000
    assert os.path.isfile(os.path.join(output_dir, "pretrain", "teacher_preset", "config.json"))
    # The region shares (now averaged over 120 query images) are measured and
    # printed. They are NOT asserted above chance: in the tuning runs for
    # issue 5 (13 configurations: depth 2/4, 1/3 heads, qkv init 0.1/0.2,
    # teacher temperature 0.02/0.04, lr x2, local scale 0.05-0.4/0.3-1,
    # 6 local crops per part, teacher momentum 0.95, person-shaped crop
    # ratios, up to 600 steps) no short run lifted every part, nor the mean
    # over parts, above chance or above its random-init share by more than
    # seed noise (+-3 points); at most all three maps shift up or down together.
    for name in ("random_init", "pass"):
        shares = metrics["part_attention"][name]
        assert len(shares["share"]) == 3 and np.all((np.array(shares["share"]) > 0) & (np.array(shares["share"]) < 1))
        assert shares["chance"] == [0.5, 0.5, 0.5]
