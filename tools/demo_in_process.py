"""The in-process clue of issue 15: the quick demo (seed 3) in a subprocess,
then its random-init fine-tuning redone in this process after the other
stages' outputs exist; prints both results and their difference.

    KERAS_BACKEND=tensorflow [TF_ENABLE_ONEDNN_OPTS=0] python tools/demo_in_process.py OUT_DIR
"""
import json, os, shutil, subprocess, sys
out = sys.argv[1]
subprocess.run([sys.executable, "-m", "keras_pass", "demo", "--quick", "--seed", "3", "--output_dir", out],
               cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), check=True)
metrics = json.load(open(os.path.join(out, "metrics.json")))
shutil.rmtree(os.path.join(out, "finetune_random_init"))
from keras_pass.recipes.demo import run_demo
resumed = run_demo(out, mode="quick", seed=3)
a, b = metrics["random_init_finetuned"], resumed["random_init_finetuned"]
print("SUB", a); print("INP", b)
print("DIFF", {k: b[k] - a[k] for k in a})
