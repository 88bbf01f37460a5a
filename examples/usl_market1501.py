"""Unsupervised PASS ReID (cluster contrast) on Market-1501 (or MSMT17, a folder).

Defaults reproduce the release's ViT-S script (`market_usl_cat_singleneck.sh`):
each epoch clusters the train features (k-reciprocal Jaccard, DBSCAN eps
0.6), then trains 200 iterations of 32 pseudo-ids x 8 against the cluster
memory, and evaluates on query/gallery. 50 epochs.

    python examples/usl_market1501.py --data_root /data \
        --preset pass_vit_small_p16_lup --output_dir runs/usl_market
    # MSMT17: --dataset msmt17 --eps 0.7 --feature_fusion mean

Every setting of the recipe's config is a flag: `keras-pass usl --help`.
Re-run the same command
to resume an interrupted run.
"""

from keras_pass.cli.main import example_main

if __name__ == "__main__":
    example_main("usl")
