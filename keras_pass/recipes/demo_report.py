"""The demo's printed table: mAP with intervals, which differences are
within noise, the sibling score and the part-probe tables."""

import numpy as np

STARTS = ("random_init", "dino", "pass")  # the three backbones compared
TITLES = {"random_init": "random init", "dino": "DINO", "pass": "PASS"}
STAGES = ("knn", "finetuned")


def probe_table(probe):
    """(row names, column names, (rows, columns) accuracy in [0, 1]): each
    token's mean accuracy over each body part's attributes, plus a chance
    row; the columns are ordered as the attributes are."""
    parts = list(dict.fromkeys(name.split(".")[0] for name in probe["attributes"]))
    columns = {part: [a for a, name in enumerate(probe["attributes"]) if name.startswith(part + ".")]
               for part in parts}
    rows = np.vstack([np.asarray(probe["accuracy"]), np.asarray(probe["chance"])[None]])
    table = np.stack([rows[:, index].mean(axis=1) for index in columns.values()], axis=1)
    region_of = {part: probe["regions"][index[0]] for part, index in columns.items()}
    names = [f"{part} (P{region_of[part] + 1})" if region_of[part] is not None else part for part in parts]
    return probe["tokens"] + ["chance"], names, table


def format_probe(title, probe):
    rows, columns, table = probe_table(probe)
    lines = [f"part probe, {title}: linear-probe accuracy (%) per token, mean over each part's "
             "attributes (Pi: the PART token whose region holds the part); fit on the train "
             "people, tested on the query and gallery people",
             f"  {'':8s}" + "".join(f"{name:>12s}" for name in columns)]
    lines += [f"  {row:8s}" + "".join(f"{100 * value:12.1f}" for value in values)
              for row, values in zip(rows, table)]
    lines.append(f"  locality: {probe['locality']:+.1f} points (each PART token on its own region's "
                 "attributes minus the other PART tokens; 0 = no specialisation)")
    return "\n".join(lines)


def _interval(metric):
    if metric["mAP"] is None:
        return "none to rank"
    low, high = metric["mAP_interval"]
    return f"{100 * metric['mAP']:5.1f} [{100 * low:4.1f}, {100 * high:4.1f}]"


def _row_name(start, stage):
    if stage == "knn":
        return f"{TITLES[start]}{' pre-trained' if start != 'random_init' else ''}, kNN (no labels)"
    return f"{TITLES[start]} + supervised fine-tuning"


def differences(metrics, stage):
    """Per pair of starts: (a, b, mean AP difference, its 95% interval),
    bootstrapped over the same queries (paired)."""
    from keras_pass.reid.evaluation import bootstrap_interval

    query_ap = metrics["query_ap"]
    pairs = [("pass", "random_init"), ("pass", "dino"), ("dino", "random_init")]
    found = []
    for a, b in pairs:
        gap = np.asarray(query_ap[f"{a}_{stage}"]) - np.asarray(query_ap[f"{b}_{stage}"])
        found.append((a, b, float(np.nanmean(gap)), bootstrap_interval(gap)))
    return found


def format_table(metrics):
    header = (f"{'model':42s} {'mAP [95% interval]':>19s} {'R-1':>6s} {'R-5':>6s} {'mINP':>6s}"
              f"  {'sibling mAP [95% interval]':>26s}")
    lines = [header, "-" * len(header)]
    for stage in STAGES:
        for start in STARTS:
            metric = metrics[f"{start}_{stage}"]
            sibling = metrics["sibling_mAP"][start][stage]
            lines.append(f"{_row_name(start, stage):42s} {_interval(metric):>19s} "
                         + " ".join(f"{100 * metric[k]:6.1f}" for k in ("rank1", "rank5", "mINP"))
                         + f"  {_interval(sibling):>26s}")
    lines += [f"intervals: 95%, bootstrap over the {metrics['num_queries']} queries; sibling mAP: "
                 f"each of {metrics['sibling_mAP']['pass']['knn']['num_queries']} queries ranked "
                 "against its own and its siblings' images (people who differ in one part)",
                 "differences: paired bootstrap over the same queries; query noise only, not "
                 "training noise (another seed moves a full-demo mAP by about 3 points)"]
    for stage in STAGES:
        texts = []
        for a, b, gap, (low, high) in differences(metrics, stage):
            verdict = "within query noise" if low <= 0 <= high else "beyond query noise"
            texts.append(f"{TITLES[a]} - {TITLES[b]} {100 * gap:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}] "
                         f"{verdict}")
        lines.append(f"mAP differences, {'kNN' if stage == 'knn' else 'fine-tuned'}: " + "; ".join(texts))
    for start in STARTS:
        shares = metrics["part_attention"][start]
        text = ", ".join(f"PART{i + 1} {100 * s:.0f}%" for i, s in enumerate(shares["share"]))
        lines.append(f"part attention inside its region, {TITLES[start]}: {text} "
                     f"(chance {100 * np.mean(shares['chance']):.0f}%)")
    lines += ["", *(format_probe(TITLES[start], metrics["part_probe"][start]) for start in STARTS)]
    return "\n".join(lines)
