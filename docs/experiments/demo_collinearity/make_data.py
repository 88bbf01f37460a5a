# Section 9 of docs/experiments/demo_diagnosis.md: python make_data.py DIR full 0
# The demo's data stage alone (keras_pass/recipes/demo.py run_demo stage 1) and the
# metrics.json keys the tool reads (mode, seed).
import os, sys
from keras_pass import io
from keras_pass.recipes.demo import DEMO_CONFIGS, write_demo_data
out, mode, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
config = DEMO_CONFIGS[mode]
write_demo_data(os.path.join(out, "data"), config["data"], config["image_size"], seed)
io.write_json(os.path.join(out, "metrics.json"), {"mode": mode, "seed": seed})
