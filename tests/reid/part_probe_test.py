import numpy as np
import pytest

from keras_pass import PASSBackbone
from keras_pass.data import synthetic
from keras_pass.models.regions import default_region_bounds
from keras_pass.reid.datasets import ImageRecords, market1501, parse_image_name
from keras_pass.reid.part_probe import (
    locality_score,
    nearest_regions,
    part_probe,
    probe_accuracy,
    sibling_map,
    token_features,
)
from tests.helpers import TINY_BACKBONE


def _people_and_tokens(tmp_path):
    """Token features of a random tiny backbone on a generated Market folder,
    with each image's attributes and each attribute's region."""
    root = str(tmp_path / "market")
    synthetic.write_market1501(root, num_train_ids=40, num_test_ids=40, num_distractors=0, num_junk=0,
                               image_size=(64, 32), seed=5, background="plain")
    people = synthetic.market1501_identities(40, 40, seed=5, num_distractors=0)
    dataset = market1501(root)
    backbone = PASSBackbone(**TINY_BACKBONE)
    sets = {}
    for name, paths in (("train", dataset.train.paths), ("test", dataset.query.paths + dataset.gallery.paths)):
        labels = synthetic.attribute_labels([people[parse_image_name(p)[0]] for p in paths])
        sets[name] = (token_features(backbone, paths), labels)
    region_of = dict(zip(synthetic.PART_SPANS, nearest_regions(list(synthetic.PART_SPANS.values()),
                                                               default_region_bounds(3))))
    regions = {name: region_of[name.split(".")[0]] for name in sets["train"][1]}
    return sets, regions


def _carry_own_region(tokens, labels, regions, seed=0):
    """The positive control: PART_i replaced by a random embedding of the
    one-hot values of region i's attributes (plus the token's own output as
    noise); CLS and the other attributes untouched."""
    rng = np.random.default_rng(seed)
    tokens = tokens.copy()
    width = tokens.shape[-1]
    for region in range(tokens.shape[1] - 1):
        names = [name for name, r in regions.items() if r == region]
        one_hot = np.concatenate([np.eye(synthetic.PART_ATTRIBUTES[n.split(".")[0]][n.split(".")[1]])[labels[n]]
                                  for n in names], axis=1)
        embedding = rng.normal(size=(one_hot.shape[1], width))
        tokens[:, 1 + region] = one_hot @ embedding + tokens[:, 1 + region] / tokens.std()
    return tokens


def test_positive_control_scores_high_and_a_random_model_about_zero(tmp_path):
    sets, regions = _people_and_tokens(tmp_path)
    (train_tokens, train_labels), (test_tokens, test_labels) = sets["train"], sets["test"]
    random_probe = part_probe(train_tokens, train_labels, test_tokens, test_labels, regions)
    assert abs(random_probe["locality"]) < 8.0  # the three PART tokens of a random network know the same

    control = part_probe(_carry_own_region(train_tokens, train_labels, regions), train_labels,
                         _carry_own_region(test_tokens, test_labels, regions), test_labels, regions)
    assert control["locality"] > 30.0
    accuracy = np.array(control["accuracy"])
    for a, region in enumerate(control["regions"]):
        others = [t for t in (1, 2, 3) if t != 1 + region]
        assert accuracy[1 + region, a] > accuracy[others, a].max(), control["attributes"][a]
    np.testing.assert_allclose(accuracy[0], random_probe["accuracy"][0])  # CLS untouched
    assert random_probe["tokens"] == ["CLS", "PART1", "PART2", "PART3"]


def test_parts_map_to_the_nearest_release_band():
    region_of = dict(zip(synthetic.PART_SPANS, nearest_regions(list(synthetic.PART_SPANS.values()),
                                                               default_region_bounds(3))))
    assert region_of == {"head": 0, "upper": 0, "belt": 1, "lower": 2, "shoes": 2}


def test_locality_of_a_hand_made_table():
    accuracy = [[0.9, 0.9, 0.9],  # CLS: not counted
                [0.8, 0.2, 0.5],  # PART1
                [0.4, 0.6, 0.5],  # PART2
                [0.2, 0.2, 0.5]]  # PART3
    # region 0 (attribute 0): 0.8 - (0.4 + 0.2) / 2 = 0.5; region 1 (attribute 1): 0.6 - 0.2 = 0.4;
    # attribute 2 in no region
    assert locality_score(accuracy, [0, 1, None]) == pytest.approx(100 * (0.5 + 0.4) / 2)
    with pytest.raises(ValueError, match="at least one attribute"):
        locality_score(accuracy, [None, None, None])


def test_probe_equals_scikit_learns_ridge_classifier():
    linear_model = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 12))
    y = (x[:, :3] @ rng.normal(size=(3, 4))).argmax(1)
    train, test = slice(0, 150), slice(150, None)
    mean, std = x[train].mean(0), x[train].std(0) + 1e-6
    reference = linear_model.RidgeClassifier(alpha=10.0).fit((x[train] - mean) / std, y[train])
    expected = np.mean(reference.predict((x[test] - mean) / std) == y[test])
    assert probe_accuracy(x[train], y[train], x[test], y[test], ridge=10.0) == pytest.approx(expected)
    assert expected > 0.6


def test_sibling_map_ranks_against_own_and_sibling_images_only():
    def records(pids, camids):
        return ImageRecords(tuple(f"{i}.jpg" for i in range(len(pids))), np.array(pids), np.array(camids))

    # Gallery: pid 2 (the query's own, camera 1), 5 (its sibling), 8 (a stranger), 0 (a distractor).
    gallery = records([2, 5, 8, 0], [1, 1, 1, 1])
    query = records([2, 8], [0, 0])
    gallery_features = np.eye(4, dtype=np.float32)
    # The query is nearest the stranger and the distractor, then its own image, then its sibling.
    query_features = np.array([[0.5, 0.1, 0.8, 0.8], [0, 0, 1, 0]], np.float32)
    result = sibling_map(query_features, gallery_features, query, gallery, {2: {5}, 5: {2}})
    assert result["num_queries"] == 1  # pid 8 has no sibling in the gallery
    assert result["mAP"] == pytest.approx(1.0)  # among pids 2 and 5 only, its own image is first
    swapped = np.array([[0.1, 0.5, 0.8, 0.8]], np.float32)  # now the sibling is nearer
    assert sibling_map(swapped, gallery_features, query.select([0]), gallery, {2: {5}})["mAP"] == (
        pytest.approx(0.5))
