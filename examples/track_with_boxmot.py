"""BoxMOT's BoT-SORT with a keras-pass model as its ReID, on generated pedestrians.

    pip install -e ".[export,trackers]"
    python examples/track_with_boxmot.py                  # a tiny model fine-tuned here (~30 s)
    python examples/track_with_boxmot.py --model runs/market/final.keras

Renders a sequence of the demo's pedestrians (`keras_pass.data.synthetic`)
walking across a scene: two pairs meet behind a pillar (the "detector"
misses a person more than 10% hidden); the first pair turns back there,
the second crosses. Boxes are given to the tracker as a detector's output
(jittered). The model is exported for BoxMOT (`client="boxmot"`: ONNX and
its metadata sidecar) and BoT-SORT runs without and with its appearance
features; the script prints the identity switches of each run (a
ground-truth person whose track id changes from one matched frame to the
next).

Measured (docs/experiments/track_with_boxmot.md), with the default model
(a tiny backbone fine-tuned here for 72 steps on 64 other generated
identities): 2 switches without appearance (the pair that turns back
swaps), 2 with BoT-SORT's default appearance gating (appearance is used
only for boxes overlapping a track's prediction, which a track lost for
~30 frames no longer does), 0 with `proximity_thresh=1`.
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # exports are written by TensorFlow
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

FRAME_HEIGHT, FRAME_WIDTH, PERSON_HEIGHT, PERSON_WIDTH = 300, 480, 128, 64
# A detection is missed when this much of the box is covered: the crops
# given to the tracker are then nearly clean (the tiny model, trained on
# whole views, is thrown off by crops half covered by the pillar).
HIDDEN_FROM = 0.1
PILLAR = ("pillar", 205, 0, 275, FRAME_HEIGHT)  # in front of everyone


def walks(num_frames):
    """Per person: (x, y, depth) per frame. Two pairs walk towards each
    other and meet mid-sequence behind a pillar: the first pair turns back
    there (motion alone predicts them crossing), the second crosses."""
    t = np.arange(num_frames, dtype=np.float32)
    meet, speed = num_frames / 2, 4.0  # px per frame: each is hidden for about 17 frames
    toward = np.minimum(t, meet) - np.maximum(t - meet, 0)  # in, then back out
    left, right = 206 - speed * meet, 210 + speed * meet  # 4 px apart behind the pillar
    paths = [
        (left + speed * toward, 16, 0),  # behind the next one, turns back
        (right - speed * toward, 22, 1),
        (left + speed * (t - 20), 160, 2),  # 20 frames later, crosses behind the next one
        (right - speed * (t - 20), 166, 3),
    ]
    return [np.stack([x, np.full_like(t, y), np.full_like(t, depth)], 1) for x, y, depth in paths]


def render_sequence(num_frames, seed=0):
    """Frames (RGB) and per frame the detections: (person, x1, y1, x2, y2)."""
    from keras_pass.data.synthetic import camera_styles, render_person, sample_identities

    rng = np.random.default_rng(seed)
    tracks = walks(num_frames)
    identities = sample_identities(len(tracks), seed=seed, sibling_fraction=0.0)
    (camera,) = camera_styles(1, seed=seed)
    sprites = [render_person(i, camera, rng, PERSON_HEIGHT, PERSON_WIDTH, background="plain") for i in identities]
    yy = np.linspace(0, 1, FRAME_HEIGHT, dtype=np.float32)[:, None, None]
    background = (90 + 80 * yy + np.zeros((1, FRAME_WIDTH, 3), np.float32)).astype(np.uint8)
    frames, detections = [], []
    for f in range(num_frames):
        frame, boxes = background.copy(), []
        for person in sorted(range(len(tracks)), key=lambda p: tracks[p][f, 2]):  # back to front
            x, y = (int(round(v)) for v in tracks[person][f, :2])
            x1, x2 = max(x, 0), min(x + PERSON_WIDTH, FRAME_WIDTH)
            if x2 - x1 < PERSON_WIDTH // 2:
                continue  # mostly outside the frame
            frame[y:y + PERSON_HEIGHT, x1:x2] = sprites[person][:, x1 - x:x2 - x]
            boxes.append((person, x1, y, x2, y + PERSON_HEIGHT))
        frame[:, PILLAR[1]:PILLAR[3]] = (70, 70, 80)
        boxes.append(PILLAR)
        frames.append(frame)
        detections.append([b for b in boxes[:-1] if _covered(b, boxes) < HIDDEN_FROM])
    return frames, detections


def _covered(box, boxes):
    """The fraction of `box` covered by the boxes drawn after it (in front)."""
    in_front = boxes[boxes.index(box) + 1:]
    _, x1, y1, x2, y2 = box
    mask = np.zeros((y2 - y1, x2 - x1), bool)
    for _, a1, b1, a2, b2 in in_front:
        mask[max(b1 - y1, 0):max(b2 - y1, 0), max(a1 - x1, 0):max(a2 - x1, 0)] = True
    return mask.mean()


def quickly_fine_tuned_backbone(epochs=12, num_identities=64, views=6, seed=1):
    """A tiny `PASSBackbone` (128x64, width 64, depth 2) trained from random
    initialisation to classify generated identities (other than the
    sequence's: another seed), cross-entropy on concat(CLS, mean PART)."""
    import keras

    from keras_pass import PASSBackbone, PASSImageConverter
    from keras_pass.data.synthetic import camera_styles, render_person, sample_identities
    from keras_pass.models.backbone import reid_feature

    keras.utils.set_random_seed(seed)
    rng, cameras = np.random.default_rng(seed), camera_styles(views, seed=seed)
    identities = sample_identities(num_identities, seed=seed, sibling_fraction=0.0)
    images = np.stack([render_person(identity, camera, rng, PERSON_HEIGHT, PERSON_WIDTH, background="plain")
                       for identity in identities for camera in cameras])
    labels = np.repeat(np.arange(num_identities), views)
    backbone = PASSBackbone(image_shape=(PERSON_HEIGHT, PERSON_WIDTH, 3), hidden_dim=64, num_layers=2,
                            num_heads=2, mlp_dim=128)
    backbone.image_converter = PASSImageConverter(image_size=(PERSON_HEIGHT, PERSON_WIDTH))  # ImageNet
    inputs = keras.Input((PERSON_HEIGHT, PERSON_WIDTH, 3))
    classifier = keras.Model(inputs, keras.layers.Dense(num_identities)(reid_feature(backbone(inputs))))
    classifier.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    classifier.fit(backbone.image_converter(images), labels, batch_size=64, epochs=epochs, verbose=0)
    return backbone


def identity_switches(tracker, frames, detections, seed=0):
    rng = np.random.default_rng(seed)
    last_track, switches = {}, 0
    for frame, boxes in zip(frames, detections):
        people = [b[0] for b in boxes]
        dets = np.array([[*np.add(b[1:], rng.normal(0, 1.5, 4)), 0.9, 0] for b in boxes], np.float32).reshape(-1, 6)
        for row in tracker.update(dets, np.ascontiguousarray(frame[..., ::-1])):  # BoxMOT takes BGR
            person, track = people[int(row[7])], int(row[4])
            switches += person in last_track and last_track[person] != track
            last_track[person] = track
    return switches


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="a preset, .keras or .pth (default: a tiny backbone fine-tuned here)")
    parser.add_argument("--frames", type=int, default=160)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    from boxmot import BotSort

    from keras_pass.deploy.export import export_feature_extractor

    if args.model:
        from keras_pass.loading import load_model

        model, name = load_model(args.model), args.model
    else:
        model = quickly_fine_tuned_backbone()
        name = "a tiny PASSBackbone fine-tuned here for 72 steps on 64 other generated identities"
    frames, detections = render_sequence(args.frames)
    with tempfile.TemporaryDirectory() as folder:
        weights = os.path.join(folder, "pass.onnx")
        export_feature_extractor(model, weights, "onnx", client="boxmot")
        # track_buffer=60 (default 30): people stay hidden behind the pillar for up to 30 frames
        settings = dict(reid_weights=weights, device="cpu", half=False, use_cmc=False, track_buffer=60)
        trackers = {
            "BoT-SORT without appearance features": lambda: BotSort(**settings, use_embeddings=False),
            "BoT-SORT with keras-pass appearance features": lambda: BotSort(**settings),
            # appearance for any pair, not only boxes overlapping a track's prediction: a track
            # lost behind the pillar no longer overlaps the person it follows
            "BoT-SORT with keras-pass appearance features, proximity_thresh=1": lambda: BotSort(
                **settings, proximity_thresh=1.0),
        }
        for name_of_run, make_tracker in trackers.items():
            print(f"{name_of_run}: {identity_switches(make_tracker(), frames, detections)} identity switches")
    print(f"({len(frames)} frames, {sum(map(len, detections))} detections, model: {name}; "
          f"{time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
