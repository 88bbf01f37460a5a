import numpy as np
import pytest

from keras_pass.recipes.demo_report import STARTS, differences, format_table, probe_table
from tests.helpers import once_under_tensorflow

# `keras_pass.recipes.demo_report` formats numbers, no Keras op: the backend cannot change what is
# checked here.
pytestmark = once_under_tensorflow


def _probe(locality=1.5):
    return {"tokens": ["CLS", "PART1", "PART2", "PART3"],
            "attributes": ["head.hair", "head.skin", "belt.color", "shoes.color"],
            "regions": [0, 0, 1, 2],
            "accuracy": [[0.5, 0.7, 0.2, 0.4]] * 4, "chance": [0.1, 0.3, 0.1, 0.1],
            "locality": locality}


def _metrics(shift):
    """Three starts on 200 queries; PASS's APs are random init's plus `shift`."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0.0, 0.6, size=200)
    aps = {"random_init": base, "dino": base + rng.normal(0, 0.01, size=200), "pass": base + shift}
    metrics = {"num_queries": 200, "query_ap": {}, "sibling_mAP": {}, "part_attention": {}, "part_probe": {}}
    for start in STARTS:
        for stage in ("knn", "finetuned"):
            mean = float(aps[start].mean())
            metrics[f"{start}_{stage}"] = {"mAP": mean, "rank1": 0.5, "rank5": 0.7, "mINP": 0.1,
                                           "mAP_interval": [mean - 0.02, mean + 0.02]}
            metrics["query_ap"][f"{start}_{stage}"] = aps[start].tolist()
        metrics["sibling_mAP"][start] = {stage: {"mAP": 0.6, "mAP_interval": [0.5, 0.7], "num_queries": 80}
                                         for stage in ("knn", "finetuned")}
        metrics["part_attention"][start] = {"share": [0.5, 0.52, 0.48], "chance": [0.5] * 3}
        metrics["part_probe"][start] = _probe()
    return metrics


def test_differences_are_paired_over_the_same_queries():
    # A constant shift of 0.001 per query is far below the spread of the APs
    # (sd ~0.17) but paired, so it is beyond noise; an unpaired interval
    # would be about +-0.03 wide and include zero.
    (a, b, gap, (low, high)), *_ = differences(_metrics(0.001), "knn")
    assert (a, b) == ("pass", "random_init")
    assert gap == pytest.approx(0.001)
    assert low == pytest.approx(0.001) and high == pytest.approx(0.001)


def test_table_says_within_noise_and_beyond_noise():
    table = format_table(_metrics(0.0))
    assert "PASS - random init +0.0 [+0.0, +0.0] within query noise" in table
    assert "DINO - random init" in table and "within query noise" in table.split("DINO - random init")[1]
    shifted = format_table(_metrics(0.05))
    assert "PASS - random init +5.0 [+5.0, +5.0] beyond query noise" in shifted
    assert "locality: +1.5 points" in shifted


def test_probe_table_averages_each_parts_attributes():
    rows, columns, table = probe_table(_probe())
    assert rows == ["CLS", "PART1", "PART2", "PART3", "chance"]
    assert columns == ["head (P1)", "belt (P2)", "shoes (P3)"]
    np.testing.assert_allclose(table[0], [0.6, 0.2, 0.4])
    np.testing.assert_allclose(table[-1], [0.2, 0.1, 0.1])
