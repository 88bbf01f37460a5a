"""Deterministic generated pedestrians for the demo and the tests.

An identity is a combination of part attributes (head/hair, upper body
colour + texture + sleeves, belt, lower body colour + texture + length,
shoes). Half of the identities are "siblings" of an earlier one that differ
in exactly ONE part, so telling them apart needs part-level features, the
case PASS's part tokens are made for. A camera changes the background,
colour cast, brightness and blur; each view also varies scale, position,
leg pose and may be partly occluded.

`write_market1501` and `write_unlabeled` lay the images out like the real
Market-1501 and LUPerson folders, so the demo uses the real loaders.
"""

import os

import numpy as np

PALETTE = np.array(
    [
        [200, 30, 30], [30, 90, 200], [40, 160, 60], [230, 200, 40], [240, 240, 240],
        [25, 25, 25], [140, 60, 160], [240, 130, 30], [110, 70, 40], [130, 130, 130],
        [40, 180, 190], [240, 150, 190],
    ],
    dtype=np.float32,
)
SKIN = np.array([[235, 195, 160], [190, 140, 100], [120, 80, 55]], dtype=np.float32)
PART_ATTRIBUTES = {
    "head": {"hair": len(PALETTE), "hair_style": 3, "skin": len(SKIN)},
    "upper": {"color": len(PALETTE), "accent": len(PALETTE), "texture": 5, "sleeves": 2},
    "belt": {"color": len(PALETTE) + 1},  # last value: no belt
    "lower": {"color": len(PALETTE), "texture": 3, "length": 2},
    "shoes": {"color": len(PALETTE)},
}
# Vertical extent of each part as fractions of the person's height, as
# `render_person` draws it (the person fills 88-98% of the image height).
PART_SPANS = {"head": (0.0, 0.18), "upper": (0.17, 0.53), "belt": (0.50, 0.54),
              "lower": (0.53, 0.92), "shoes": (0.92, 0.975)}


def sample_identities(num_identities, seed=0, sibling_fraction=0.5):
    """Identities as dicts of attributes; siblings differ in one part only."""
    rng = np.random.default_rng(seed)
    identities = []
    for index in range(num_identities):
        if index and rng.random() < sibling_fraction:
            identity = {part: dict(attrs) for part, attrs in identities[rng.integers(index)].items()}
            part = list(PART_ATTRIBUTES)[rng.integers(len(PART_ATTRIBUTES))]
            name = list(PART_ATTRIBUTES[part])[rng.integers(len(PART_ATTRIBUTES[part]))]
            choices = PART_ATTRIBUTES[part][name]
            identity[part][name] = (identity[part][name] + 1 + rng.integers(choices - 1)) % choices
        else:
            identity = {
                part: {name: int(rng.integers(n)) for name, n in attrs.items()}
                for part, attrs in PART_ATTRIBUTES.items()
            }
        identities.append(identity)
    return identities


def attribute_labels(identities):
    """{"part.attribute": int array}, one entry per identity."""
    return {f"{part}.{name}": np.array([identity[part][name] for identity in identities])
            for part, attributes in PART_ATTRIBUTES.items() for name in attributes}


def siblings(identities):
    """Per identity index, the indices of identities differing from it in exactly one part."""
    def parts_differing(a, b):
        return sum(a[part] != b[part] for part in PART_ATTRIBUTES)

    return [{j for j, other in enumerate(identities) if parts_differing(identity, other) == 1}
            for identity in identities]


def market1501_pid(index):
    """The folder's person id of identity `index` (ids are spread out, as Market's are)."""
    return 2 + 3 * index


def market1501_identities(num_train_ids=60, num_test_ids=60, seed=0, num_distractors=20):
    """{pid: identity} of the train and test people `write_market1501` draws with these settings."""
    identities = sample_identities(num_train_ids + num_test_ids + num_distractors, seed)
    return {market1501_pid(i): identities[i] for i in range(num_train_ids + num_test_ids)}


def camera_styles(num_cameras, seed=0):
    """Per camera: background colours, colour cast, brightness, blur."""
    rng = np.random.default_rng(seed + 7919)
    return [
        {
            "background": rng.uniform(40, 220, size=(2, 3)).astype(np.float32),
            "cast": rng.uniform(0.8, 1.2, size=3).astype(np.float32),
            "brightness": float(rng.uniform(0.75, 1.2)),
            "blur": float(rng.choice([0.0, 0.6, 1.0])),
        }
        for _ in range(num_cameras)
    ]


def _fill(canvas, mask, color):
    canvas[mask] = color


def _texture(texture, yy, xx, period):
    """Boolean accent pattern of a body part (0 = solid)."""
    if texture == 1:
        return (yy // period) % 2 == 0  # horizontal stripes
    if texture == 2:
        return (xx // period) % 2 == 0  # vertical stripes
    if texture == 3:
        return ((yy // period) + (xx // period)) % 2 == 0  # checks
    if texture == 4:
        return np.zeros_like(yy, dtype=bool)  # logo, drawn separately
    return np.zeros_like(yy, dtype=bool)


BACKGROUNDS = ("scene", "plain")


def _background(camera, rng, yy, h, background):
    if background not in BACKGROUNDS:
        raise ValueError(f"Expected background in {BACKGROUNDS}. Received: background={background}")
    if background == "plain":  # one grey for every view: no instance information
        canvas = np.full((*yy.shape, 3), 128.0, np.float32)
    else:  # mostly per-view: as in real crops, the person is what two views share
        top, bottom = 0.4 * camera["background"] + 0.6 * rng.uniform(30, 230, size=(2, 3)).astype(np.float32)
        canvas = top + (bottom - top) * (yy / h)[..., None]
    return canvas + rng.normal(0, 6, size=(*yy.shape, 1)).astype(np.float32)


def render_person(identity, camera, rng, height=128, width=64, background="scene"):
    """One view (uint8, height x width x 3) of an identity under a camera.

    `background`: "scene" (coloured, mostly per view, with clutter) or
    "plain" (the same grey for every view, no clutter; the camera's colour
    cast, brightness and blur still apply).
    """
    scale = 2  # draw at 2x, then box-downsample: smooth edges
    h, w = height * scale, width * scale
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    canvas = _background(camera, rng, yy, h, background)
    for _ in range(rng.integers(0, 4) if background == "scene" else 0):  # clutter behind the person
        by, bx = rng.uniform(0, h), rng.uniform(-0.2 * w, w)
        clutter = (yy >= by) & (yy < by + rng.uniform(0.1, 0.5) * h) & (xx >= bx) & (xx < bx + rng.uniform(0.1, 0.4) * w)
        _fill(canvas, clutter, rng.uniform(30, 220, size=3).astype(np.float32))

    person_h = h * rng.uniform(0.88, 0.98)
    y0 = rng.uniform(0.01, 0.99 - person_h / h) * h
    cx = w / 2 + rng.uniform(-0.07, 0.07) * w
    unit = person_h  # body proportions in fractions of the person height
    py = (yy - y0) / unit
    px = (xx - cx) / unit
    head, upper, belt, lower = identity["head"], identity["upper"], identity["belt"], identity["lower"]
    skin = SKIN[head["skin"]]
    period = 3 * scale

    legs_gap = rng.uniform(0.0, 0.05)
    leg_bottom = 0.92
    leg_mask = (py > 0.53) & (py < leg_bottom) & (np.abs(px) < 0.11 + legs_gap) & (np.abs(px) > legs_gap * 0.6)
    shorts = lower["length"] == 1
    _fill(canvas, leg_mask & (py > (0.70 if shorts else 2.0)), skin)
    trouser = leg_mask & (py <= (0.70 if shorts else leg_bottom))
    _fill(canvas, trouser, PALETTE[lower["color"]])
    if lower["texture"]:
        side = np.abs(np.abs(px) - (0.11 + legs_gap) + 0.015) < 0.012 if lower["texture"] == 1 else (
            _texture(1, yy, xx, period * 2))
        _fill(canvas, trouser & side, PALETTE[(lower["color"] + 5) % len(PALETTE)])
    shoe = (py >= leg_bottom) & (py < 0.975) & (np.abs(px) < 0.12 + legs_gap) & (np.abs(px) > legs_gap * 0.6 - 0.01)
    _fill(canvas, shoe, PALETTE[identity["shoes"]["color"]])

    torso = (py > 0.17) & (py < 0.53) & (np.abs(px) < 0.17 - 0.05 * (py - 0.17))
    arms = (py > 0.19) & (py < 0.50) & (np.abs(px) >= 0.18) & (np.abs(px) < 0.23)
    sleeve_end = 0.50 if upper["sleeves"] == 0 else 0.30
    _fill(canvas, arms & (py >= sleeve_end), skin)
    cloth = torso | (arms & (py < sleeve_end))
    _fill(canvas, cloth, PALETTE[upper["color"]])
    pattern = _texture(upper["texture"], yy, xx, period)
    if upper["texture"] == 4:
        pattern = (np.abs(px) < 0.06) & (np.abs(py - 0.30) < 0.06)
    _fill(canvas, torso & pattern, PALETTE[upper["accent"]])
    if belt["color"] < len(PALETTE):
        _fill(canvas, (py > 0.50) & (py < 0.54) & (np.abs(px) < 0.15), PALETTE[belt["color"]])

    _fill(canvas, (py > 0.13) & (py < 0.18) & (np.abs(px) < 0.035), skin)  # neck
    face = ((py - 0.085) / 0.07) ** 2 + (px / 0.055) ** 2 < 1
    _fill(canvas, face, skin)
    hair_color = PALETTE[head["hair"]]
    if head["hair_style"] == 2:  # cap with a brim
        _fill(canvas, face & (py < 0.07), hair_color)
        _fill(canvas, (np.abs(py - 0.07) < 0.01) & (px > -0.06) & (px < 0.09), hair_color)
    else:
        _fill(canvas, face & (py < 0.065), hair_color)
        if head["hair_style"] == 1:  # long hair down to the shoulders
            _fill(canvas, (py > 0.05) & (py < 0.22) & (np.abs(px) > 0.04) & (np.abs(px) < 0.075), hair_color)

    if rng.random() < 0.15:  # occluder: a box of some other colour
        oh, ow = rng.uniform(0.15, 0.35) * h, rng.uniform(0.3, 0.7) * w
        oy, ox = rng.uniform(0, h - oh), rng.uniform(0, w - ow)
        box = (yy >= oy) & (yy < oy + oh) & (xx >= ox) & (xx < ox + ow)
        _fill(canvas, box, rng.uniform(30, 220, size=3).astype(np.float32))

    canvas = canvas * camera["cast"] * camera["brightness"]
    if rng.random() < 0.5:
        canvas = canvas[:, ::-1]
    canvas = canvas.reshape(height, scale, width, scale, 3).mean(axis=(1, 3))
    if camera["blur"]:
        canvas = _blur(canvas, camera["blur"])
    return np.clip(canvas, 0, 255).astype(np.uint8)


def _blur(image, sigma):
    radius = int(np.ceil(2 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    for axis in (0, 1):
        padded = np.pad(image, [(radius, radius) if a == axis else (0, 0) for a in range(3)], mode="edge")
        image = sum(
            t * np.take(padded, np.arange(i, i + image.shape[axis]), axis=axis) for i, t in enumerate(taps)
        )
    return image


def _save_jpeg(path, image):
    from PIL import Image

    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(image).save(path, quality=92)


def _views(identity, cameras, styles, rng, views_per_camera, size, background):
    for camera in cameras:
        for _ in range(rng.integers(views_per_camera[0], views_per_camera[1] + 1)):
            yield camera, render_person(identity, styles[camera], rng, *size, background)


def write_market1501(
    root,
    num_train_ids=60,
    num_test_ids=60,
    num_cameras=6,
    cameras_per_id=(2, 4),
    views_per_camera=(1, 3),
    num_distractors=20,
    num_junk=10,
    image_size=(128, 64),
    seed=0,
    background="scene",
):
    """Writes a Market-1501-style folder (`bounding_box_train`, `query`,
    `bounding_box_test`, names `PPPP_cCsS_FFFFFF_NN.jpg`) and returns counts.

    Test identities get one query per camera they appear in, except their
    last camera (so every query has a cross-camera match); the gallery holds
    their other views, distractors (id 0000) and junk images (id -1).
    `background`: see `render_person`.
    """
    rng = np.random.default_rng(seed)
    identities = sample_identities(num_train_ids + num_test_ids + num_distractors, seed)
    styles = camera_styles(num_cameras, seed)
    counts = {"bounding_box_train": 0, "query": 0, "bounding_box_test": 0}
    frame = 0

    def save(split, pid, camera, image, index):
        nonlocal frame
        frame += 1
        name = f"{pid:04d}_c{camera + 1}s1_{frame:06d}_{index:02d}.jpg" if pid >= 0 else (
            f"-1_c{camera + 1}s1_{frame:06d}_{index:02d}.jpg")
        _save_jpeg(os.path.join(root, split, name), image)
        counts[split] += 1

    def cameras_of():
        count = rng.integers(cameras_per_id[0], cameras_per_id[1] + 1)
        return sorted(rng.choice(num_cameras, size=min(count, num_cameras), replace=False))

    for i in range(num_train_ids):
        views = _views(identities[i], cameras_of(), styles, rng, views_per_camera, image_size, background)
        for k, (camera, image) in enumerate(views):
            save("bounding_box_train", market1501_pid(i), camera, image, k)
    for i in range(num_train_ids, num_train_ids + num_test_ids):
        pid, cameras = market1501_pid(i), cameras_of()
        queried = set()
        views = _views(identities[i], cameras, styles, rng, views_per_camera, image_size, background)
        for k, (camera, image) in enumerate(views):
            split = "query" if camera != cameras[-1] and camera not in queried else "bounding_box_test"
            queried.add(camera)
            save(split, pid, camera, image, k)
    for i in range(num_train_ids + num_test_ids, len(identities)):
        camera = int(rng.integers(num_cameras))
        save("bounding_box_test", 0, camera, render_person(identities[i], styles[camera], rng, *image_size, background), 0)
    for k in range(num_junk):  # Market's junk: badly cropped fragments
        camera = int(rng.integers(num_cameras))
        image = render_person(identities[int(rng.integers(len(identities)))], styles[camera], rng, *image_size,
                              background)
        rows = np.arange(image_size[0]) // 3  # the top third, stretched
        save("bounding_box_test", -1, camera, image[rows], k)
    return counts


def write_unlabeled(root, num_identities=200, views=(2, 4), num_cameras=6, image_size=(128, 64), seed=1,
                    background="scene"):
    """Writes a LUPerson-style unlabeled folder: `root/images/<video>/<n>.jpg`.

    Use a different `seed` from the labelled set: pre-training data are other
    people, as LUPerson is for Market-1501.
    """
    rng = np.random.default_rng(seed)
    styles = camera_styles(num_cameras, seed)
    paths = []
    for i, identity in enumerate(sample_identities(num_identities, seed)):
        cameras = rng.choice(num_cameras, size=2, replace=False)
        for k, (_, image) in enumerate(_views(identity, cameras, styles, rng, views, image_size, background)):
            path = os.path.join(root, "images", f"{i // 50:04d}", f"{i:05d}_{k:02d}.jpg")
            _save_jpeg(path, image)
            paths.append(path)
    return paths
