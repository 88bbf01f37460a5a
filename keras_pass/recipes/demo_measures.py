"""The demo's instruments on one model: retrieval with per-query APs, the
sibling score and the part probe, on the generated Market folder whose
people's attributes `keras_pass.data.synthetic` knows."""

from keras_pass.data.synthetic import PART_SPANS, attribute_labels, market1501_identities, siblings
from keras_pass.models.regions import default_region_bounds
from keras_pass.reid.datasets import parse_image_name
from keras_pass.reid.evaluation import bootstrap_interval
from keras_pass.reid.features import evaluate_feature_sets, extract_features
from keras_pass.reid.part_probe import nearest_regions, part_probe, sibling_map, token_features


def labelled_people(config, seed):
    """{pid: identity} of the generated Market folder's train and test people."""
    sizes = config["data"]
    return market1501_identities(sizes["labelled_train_ids"], sizes["labelled_test_ids"], seed)


def _sibling_pids(people):
    pids = list(people)
    return {pid: {pids[j] for j in found} for pid, found in zip(pids, siblings(list(people.values())))}


def _labels(people, paths):
    return attribute_labels([people[parse_image_name(path)[0]] for path in paths])


def run_part_probe(backbone, dataset, people):
    """`reid.part_probe` fit on the train people, tested on the query and
    gallery people; each body part belongs to the [PART] region nearest it."""
    test = [path for records in (dataset.query, dataset.gallery)
            for path, pid in zip(records.paths, records.pids) if int(pid) in people]
    train = list(dataset.train.paths)
    bounds = default_region_bounds(backbone.num_parts)
    region_of = dict(zip(PART_SPANS, nearest_regions(list(PART_SPANS.values()), bounds)))
    train_labels = _labels(people, train)
    return part_probe(token_features(backbone, train), train_labels, token_features(backbone, test),
                      _labels(people, test), {name: region_of[name.split(".")[0]] for name in train_labels})


def evaluate_retrieval(model, dataset, people):
    """(Market-protocol results with per-query APs, sibling score with its
    interval; None without a sibling query) of a backbone or fine-tuned
    model's test feature."""
    query = extract_features(model, dataset.query.paths, verbose=False)
    gallery = extract_features(model, dataset.gallery.paths, verbose=False)
    results = evaluate_feature_sets(query, gallery, dataset.query, dataset.gallery)
    sibling = sibling_map(query, gallery, dataset.query, dataset.gallery, _sibling_pids(people))
    interval = list(bootstrap_interval(sibling["query_ap"])) if sibling["num_queries"] else None
    return results, {"mAP": sibling["mAP"] if sibling["num_queries"] else None, "mAP_interval": interval,
                     "num_queries": sibling["num_queries"]}
