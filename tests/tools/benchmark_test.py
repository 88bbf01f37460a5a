import json
import os
import re
import sys

import pytest

from tests.helpers import REPO_ROOT

sys.path.insert(0, os.path.join(REPO_ROOT, "tools"))
from benchmark_flops import vit_forward_flops  # noqa: E402

from keras_pass.models.configs import arch_config  # noqa: E402


def test_flop_count_matches_the_published_vit_s_figure():
    # ViT-S/16 at 224x224 (196 patches + CLS): 4.6 GMACs in the DeiT/timm tables.
    flops = vit_forward_flops({**arch_config("vit_small"), "num_parts": 0}, 196, 1)
    assert flops / 2 == pytest.approx(4.6e9, rel=0.03)


@pytest.mark.slow
def test_every_benchmark_runs_once_on_a_tiny_model(tmp_path, capsys):
    import benchmark

    benchmark.main(["all", "--tiny", "--json", str(tmp_path / "out.json")])
    printed = capsys.readouterr().out
    for command in ("pretrain", "finetune", "extract", "data", "eval", "cluster", "peak"):
        line = next(l for l in printed.splitlines() if l.startswith(command))
        figures = [float(x) for x in re.findall(r" ([0-9.]+(?:e[+-]?[0-9]+)?)(?:,|$)", line)]
        assert figures and all(f > 0 for f in figures), line

    rows = json.loads((tmp_path / "out.json").read_text())["results"]
    # The figures must agree with each other, not just be positive.
    for command, batch in (("pretrain", 2), ("finetune", 8)):
        row = rows[command]
        assert row["images/s"] * row["s/step"] == pytest.approx(batch, rel=1e-6), command
    assert rows["data"]["crops/s"] == pytest.approx(11 * rows["data"]["images/s"], rel=1e-6)


def test_peak_is_measured_in_the_compute_dtype_of_the_precision():
    import benchmark

    row = benchmark.bench_peak(benchmark.parse_args(["peak", "--tiny", "--precision", "mixed_bfloat16"]))
    assert set(row) == {"float32 GFLOP/s", "bfloat16 GFLOP/s"}
    assert all(value > 0 for value in row.values())
