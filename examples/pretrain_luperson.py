"""PASS pre-training on LUPerson (or any folder of person images).

Defaults reproduce the release (`PASS/script/vit-s_full_lup-pass.sh`):
ViT-S/16, 2 global crops 256x128 + 3 regions x 3 local crops 128x64,
100 epochs, AdamW 5e-4 x batch/256 with 10 warm-up epochs, weight decay
0.04 -> 0.4, teacher momentum 0.996 -> 1, four heads of 65,536 prototypes.

    python examples/pretrain_luperson.py --data_dir /data/LUP/images \
        --output_dir runs/pass_vits --batch_size 128
    # several GPUs: --distribution mirrored (TensorFlow) or data_parallel (JAX)
    # afterwards: PASSBackbone.from_preset("runs/pass_vits/teacher_preset")

Every setting of the recipe's config is a flag: `keras-pass pretrain --help`.
"""

from keras_pass.cli.main import example_main

if __name__ == "__main__":
    example_main("pretrain")
