"""Domain-adaptive PASS ReID (cluster contrast): source model -> Market-1501.

Start from a backbone fine-tuned on the source domain (e.g. MSMT17 with
`examples/finetune_market1501.py --dataset msmt17`, whose output holds
`backbone_preset/`), add fresh BN necks (one per token, 'cat' fusion), and
train on the unlabeled target with the release's settings
(`market_uda_cat.sh`), evaluating on the target's query/gallery each epoch.

    python examples/uda_market1501.py --data_root /data \
        --preset runs/finetune_msmt/backbone_preset --output_dir runs/msmt2market
    # Market -> MSMT17: --dataset msmt17 --eps 0.7 --feature_fusion mean

Every setting of the recipe's config is a flag: `keras-pass uda --help`.
"""

from keras_pass.cli.main import example_main

if __name__ == "__main__":
    example_main("uda")
