from keras_pass.uda.benchmark import main, time_clustering


def test_clustering_timing_on_a_tiny_problem(capsys):
    row = time_clustering(200, dim=32, num_ids=5, search="numpy", k1=20)
    assert row["clusters"] == 5 and row["jaccard s"] > 0 and row["dbscan s"] > 0
    main(["--sizes", "120", "--dim", "16", "--ids", "4", "--search", "numpy"])
    assert "N=120: jaccard s" in capsys.readouterr().out
