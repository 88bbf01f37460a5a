"""The example script and the tools' `main(argv)`, in-process (`runpy`:
the script's own `__main__` block, as users run it)."""

import json
import os

import numpy as np
import pytest

from keras_pass.models.backbone import PASSBackbone
from keras_pass.cli import evaluate, extract, visualize
from keras_pass.reid.evaluation import evaluate_rank, pairwise_distance
from keras_pass.reid.features import load_feature_set
from tests.helpers import TINY_BACKBONE, make_market1501, once_under_tensorflow, run_script


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    """examples/finetune_market1501.py end to end: tiny ViT, 2 epochs x 2 steps."""
    root = tmp_path_factory.mktemp("e2e")
    make_market1501(root / "data")
    PASSBackbone(**TINY_BACKBONE).save_to_preset(str(root / "preset"))
    stdout = run_script(
        "examples/finetune_market1501.py", "--data_root", root / "data", "--preset",
        root / "preset", "--image_size", "64,32", "--epochs", 2, "--batch_size", 8,
        "--steps_per_epoch", 2, "--warmup_epochs", 1, "--eval_every", 1,
        "--output_dir", root / "out", "--verbose", 2)
    return root, stdout


@pytest.mark.slow
@once_under_tensorflow  # the script wraps `recipes.finetune`, tested on both backends
class TestFinetuneExample:
    def test_runs_end_to_end_and_prints_metrics(self, finetuned):
        root, stdout = finetuned
        for text in ("Dataset statistics", "Epoch 1 evaluation: mAP", "mAP:", "mINP:",
                     "CMC Rank-1", "CMC Rank-10", "valid queries: 5"):
            assert text in stdout
        outputs = sorted(os.listdir(root / "out"))
        assert outputs == ["backbone_preset", "best.weights.h5", "best.weights.h5.json", "checkpoint",
                           "final.keras", "history.csv", "results.json", "run.json", "run.lock"]
        with open(root / "out" / "results.json") as handle:
            results = json.load(handle)
        assert 0.0 <= results["final"]["mAP"] <= 1.0 and results["config"]["epochs"] == 2
        with open(root / "out" / "history.csv") as handle:
            header = handle.readline()
        assert "mAP" in header and "triplet_loss" in header

    def test_tools_extract_evaluate_visualize(self, finetuned, capsys):
        root, _ = finetuned
        feats = root / "features"
        assert extract.main([str(root / "out" / "final.keras"), str(root / "data"), str(feats)]) == 0
        query, query_records = load_feature_set(str(feats), "query")
        gallery, gallery_records = load_feature_set(str(feats), "gallery")
        assert query.shape == (6, 64) and gallery.shape == (16, 64)
        np.testing.assert_allclose(np.linalg.norm(query, axis=1), 1.0, atol=1e-5)
        assert all(os.path.isfile(p) for p in query_records.paths)
        expected = evaluate_rank(pairwise_distance(query, gallery), query_records.pids,
                                 gallery_records.pids, query_records.camids, gallery_records.camids)

        assert evaluate.main([str(feats), "--output", str(root / "metrics.json")]) == 0
        printed = capsys.readouterr().out
        assert "CMC Rank-1" in printed and "TPR@FPR=0.01" in printed
        with open(root / "metrics.json") as handle:
            metrics = json.load(handle)
        assert metrics["mAP"] == pytest.approx(expected["mAP"])
        assert set(metrics["tpr_at_fpr"]) == {"0.0001", "0.001", "0.01"}
        assert evaluate.main([str(feats), "--rerank", "--k1", "4", "--k2", "2"]) == 0
        assert "re-ranked" in capsys.readouterr().out

        png = root / "ranking.png"
        assert visualize.main([str(feats), str(png), "--num_queries", "3", "--top_k", "5"]) == 0
        from PIL import Image

        with Image.open(png) as image:
            assert image.size[0] > 500 and image.size[1] > 500

    def test_tool_errors(self, finetuned, tmp_path, capsys):
        root, _ = finetuned
        from keras_pass.cli.main import main

        assert main(["extract", str(root / "preset"), str(tmp_path / "missing"), str(tmp_path)]) == 2
        assert "bounding_box_train" in capsys.readouterr().err
        assert main(["evaluate", str(tmp_path / "nothing")]) == 2
        assert "split 'query'" in capsys.readouterr().err
        assert main(["visualize", str(root / "features"), str(tmp_path / "x.png"), "--queries", "99"]) == 2
        assert "query indices" in capsys.readouterr().err

    def test_wrapper_script_help(self):
        assert "features_dir" in run_script("tools/evaluate.py", "--help")


def test_finetune_cli_requires_data_root():
    from keras_pass.cli import finetune as finetune_cli

    with pytest.raises(ValueError, match="Expected --data_root"):
        finetune_cli.main(["--preset", "x"])
