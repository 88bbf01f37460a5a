"""tools/benchmark_clustering.py on problems whose answer is known."""

import os
import sys

from tests.helpers import REPO_ROOT, once_under_tensorflow

sys.path.insert(0, os.path.join(REPO_ROOT, "tools"))
from benchmark_clustering import main, random_features, time_clustering  # noqa: E402

# The clustering pipeline is NumPy and scikit-learn, no Keras op: the backend cannot change what is
# checked here.
pytestmark = once_under_tensorflow


def test_the_timed_pipeline_recovers_planted_identities(capsys):
    # 5 well-separated identities: the timed Jaccard + DBSCAN must find them
    # (a benchmark of a pipeline that returns nonsense would time nonsense).
    for num_ids in (3, 5):
        assert time_clustering(200, dim=32, num_ids=num_ids, search="numpy", k1=20)["clusters"] == num_ids
    main(["--sizes", "120", "--dim", "16", "--ids", "4", "--search", "numpy"])
    assert "N=120: jaccard s" in capsys.readouterr().out


def test_features_are_unit_norm_and_seeded():
    import numpy as np

    a, b = random_features(50, dim=8, num_ids=2, seed=3), random_features(50, dim=8, num_ids=2, seed=3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
