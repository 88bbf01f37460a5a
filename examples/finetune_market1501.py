"""Supervised PASS fine-tuning on Market-1501 (or MSMT17, DukeMTMC-reID, a folder).

Defaults reproduce the official recipe (`PASS_transreid`, ViT-S 256x128):
P x K = 16 x 4, SGD 0.9, lr 4e-4 (biases x2), wd 1e-4, 20 warm-up epochs,
cosine over 120 epochs, CE + soft-margin triplet, concat(CLS, mean PART).

    python examples/finetune_market1501.py --data_root /data \
        --preset pass_vit_small_p16_lup --output_dir runs/market_vits
    python examples/finetune_market1501.py --data_root /data \
        --checkpoint pass_vit_small_full.pth --image_size 384,128 ...

Every setting of the recipe's config is a flag: `keras-pass finetune --help`.
Re-run the same command to resume an interrupted run.
"""

from keras_pass.cli.main import example_main

if __name__ == "__main__":
    example_main("finetune")
