# Section 9 of docs/experiments/demo_diagnosis.md; run from the repository root with
# KERAS_BACKEND=tensorflow PYTHONPATH=.:tools (PASS_REPO: the release clone, for "release").
# keras-pass's trainer (built as tools/official_same_start.KerasSide, the demo's pretrain
# config) from an initial draw of either implementation, views seed 0, 600 steps; logs the
# teacher's token cosines on query+gallery images every 100 steps.
import os, sys, time
import keras
from keras_pass import io
from keras_pass.recipes.demo import DEMO_CONFIGS, _pretrain_config
from keras_pass.recipes.pretrain import build_backbone
from keras_pass.pretraining.trainer import PASSPretrainer
from official_same_start import KerasSide, TorchSide, torch_to_keras, eval_images, token_cosines
from keras_pass.models.convert import convert_checkpoint
demo_dir, out, source, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
config = DEMO_CONFIGS["full"]
preset = os.path.join(out, "initial_preset")
if source == "release":
    state = TorchSide(os.environ.get("PASS_REPO", "/tmp/pass_official"), config, seed, 0.1).student.state_dict()
    convert_checkpoint({k[9:]: v for k, v in state.items() if k.startswith("backbone.")}, preset, arch="vit_tiny",
                       image_size=config["image_size"], stride=8, **config["backbone"])
    heads = torch_to_keras(state)
else:
    keras.utils.set_random_seed(seed)
    cfg = _pretrain_config(config, os.path.join(demo_dir, "data", "luperson"), out, seed)
    m = PASSPretrainer(build_backbone(cfg), out_dim=cfg.out_dim, head_hidden_dim=cfg.head_hidden_dim,
                       bottleneck_dim=cfg.bottleneck_dim)
    m.student_backbone.save_to_preset(preset)
    heads = {v.path: v.numpy() for h in m.student_heads for v in h.weights}
side = KerasSide(config, demo_dir, 0, preset, heads, out)
images = eval_images(demo_dir, config["image_size"], 512)
batches = side.dataset(0).as_numpy_iterator()
log, started = [], time.time()
for step in range(601):
    if step % 100 == 0:
        log.append({"step": step, "cosines": token_cosines(*side.tokens(images))})
        print(step, {k: round(v, 3) for k, v in log[-1]["cosines"].items()}, f"{time.time() - started:.0f} s", flush=True)
    if step < 600:
        loss = side.step(next(batches))
io.write_json(os.path.join(out, "log.json"), {"source": source, "seed": seed, "log": log, "final_loss": loss})
