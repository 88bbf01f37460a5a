# Section 9 of docs/experiments/demo_diagnosis.md; KERAS_BACKEND=tensorflow PYTHONPATH=.:tools.
# keras-pass's own PASS pre-training of the demo (its own initialisation, seed S), as the
# demo runs it (recipes.pretrain with the demo's _pretrain_config), then the token cosines
# of its teacher preset measured with both position-embedding semantics.
import os, sys
from keras_pass import io
from keras_pass.recipes.demo import DEMO_CONFIGS, _pretrain_config
from keras_pass.recipes.pretrain import pretrain
from official_on_demo import preset_cosines
demo_dir, out, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
config = DEMO_CONFIGS[io.read_json(os.path.join(demo_dir, "metrics.json"))["mode"]]
cfg = _pretrain_config(config, os.path.join(demo_dir, "data", "luperson"), out, seed)
cfg = type(cfg)(**{**cfg.__dict__, "verbose": 2})
pretrain(cfg)
c = preset_cosines(os.path.join(out, "teacher_preset"), demo_dir, config)
io.write_json(os.path.join(out, "cosines.json"), c)
for mode, values in c.items():
    print(mode, {k: round(v, 3) for k, v in values.items()})
