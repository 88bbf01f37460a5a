"""Registry of the official PASS models, as data.

No weights ship with keras-pass and nothing is downloaded: each entry says
where the authors publish the PyTorch checkpoint. Convert it once with
`keras-pass convert` into the local preset directory
`$KERAS_PASS_HOME/presets/<name>` (default `~/.keras/keras_pass/presets`).
`params` is the backbone's parameter count (heads and necks excluded).
"""

PASS_PRESETS = {
    "pass_vit_small_p16_lup": {
        "description": "PASS ViT-S/16 pre-trained on LUPerson (teacher backbone).",
        "arch": "vit_small",
        "image_size": (256, 128),
        "stride": 16,
        "params": 21641856,
        "official_url": "https://drive.google.com/file/d/1q7oxT0vWvt0Ia0NMmdVlA3oUs0UCQq3C/view",
        "source": "https://github.com/CASIA-IVA-Lab/PASS-reID (README, Pre-trained Models)",
    },
    "pass_vit_base_p16_lup": {
        "description": "PASS ViT-B/16 pre-trained on LUPerson (teacher backbone).",
        "arch": "vit_base",
        "image_size": (256, 128),
        "stride": 16,
        "params": 85751040,
        "official_url": "https://drive.google.com/file/d/1sZUrabY6Lke-BJoxOEviX5ALJ017x4Ft/view",
        "source": "https://github.com/CASIA-IVA-Lab/PASS-reID (README, Pre-trained Models)",
    },
    "pass_vit_small_p16_market1501_256x128": {
        "description": "PASS ViT-S/16 fine-tuned on Market-1501 at 256x128 (official mAP/Rank-1 92.2/96.3).",
        "arch": "vit_small",
        "image_size": (256, 128),
        "stride": 16,
        "params": 21641856,
        "official_url": "https://drive.google.com/file/d/1e7QVo-0lJ9EUcRgJNIQ2gci2Pj1_ZE9M/view",
        "source": "https://github.com/CASIA-IVA-Lab/PASS-reID (README, Supervised ReID)",
    },
    "pass_vit_small_p16_market1501_384x128": {
        "description": "PASS ViT-S/16 fine-tuned on Market-1501 at 384x128 (official mAP/Rank-1 92.6/96.8).",
        "arch": "vit_small",
        "image_size": (384, 128),
        "stride": 16,
        "params": 21666432,
        "official_url": "https://drive.google.com/file/d/1201j4ix92953te-o3FrrXh5sqxtTO7TE/view",
        "source": "https://github.com/CASIA-IVA-Lab/PASS-reID (README, Supervised ReID)",
    },
    "pass_vit_base_p16_market1501_256x128": {
        "description": "PASS ViT-B/16 fine-tuned on Market-1501 at 256x128 (official mAP/Rank-1 93.0/96.8).",
        "arch": "vit_base",
        "image_size": (256, 128),
        "stride": 16,
        "params": 85751040,
        "official_url": "https://drive.google.com/file/d/104I1LStAfu52hlCMlx3eCIENIA_KMJUR/view",
        "source": "https://github.com/CASIA-IVA-Lab/PASS-reID (README, Supervised ReID)",
    },
    "pass_vit_base_p16_market1501_384x128": {
        "description": "PASS ViT-B/16 fine-tuned on Market-1501 at 384x128 (official mAP/Rank-1 93.3/96.9).",
        "arch": "vit_base",
        "image_size": (384, 128),
        "stride": 16,
        "params": 85800192,
        "official_url": "https://drive.google.com/file/d/1dYQjK4ycpXRfOJFoucbizQlKdytoKmpl/view",
        "source": "https://github.com/CASIA-IVA-Lab/PASS-reID (README, Supervised ReID)",
    },
    "pass_vit_small_p16_msmt17_256x128": {
        "description": "PASS ViT-S/16 fine-tuned on MSMT17 at 256x128 (official mAP/Rank-1 69.1/86.5).",
        "arch": "vit_small",
        "image_size": (256, 128),
        "stride": 16,
        "params": 21641856,
        "official_url": "https://drive.google.com/file/d/1or1Lj7Xvd_gmQIMEX_TvzcZsqOgNWoDk/view",
        "source": "https://github.com/CASIA-IVA-Lab/PASS-reID (README, Supervised ReID)",
    },
    "pass_vit_small_p16_msmt17_384x128": {
        "description": "PASS ViT-S/16 fine-tuned on MSMT17 at 384x128 (official mAP/Rank-1 71.7/87.9).",
        "arch": "vit_small",
        "image_size": (384, 128),
        "stride": 16,
        "params": 21666432,
        "official_url": "https://drive.google.com/file/d/1EV4r3W_oCFn0JrhgwWX1j3X1jJR-BlcN/view",
        "source": "https://github.com/CASIA-IVA-Lab/PASS-reID (README, Supervised ReID)",
    },
    "pass_vit_base_p16_msmt17_256x128": {
        "description": "PASS ViT-B/16 fine-tuned on MSMT17 at 256x128 (official mAP/Rank-1 71.8/88.2).",
        "arch": "vit_base",
        "image_size": (256, 128),
        "stride": 16,
        "params": 85751040,
        "official_url": "https://drive.google.com/file/d/1W18HEwF5P7qN8MqyacFXOHW0W5gwVUs4/view",
        "source": "https://github.com/CASIA-IVA-Lab/PASS-reID (README, Supervised ReID)",
    },
    "pass_vit_base_p16_msmt17_384x128": {
        "description": "PASS ViT-B/16 fine-tuned on MSMT17 at 384x128 (official mAP/Rank-1 74.3/89.7).",
        "arch": "vit_base",
        "image_size": (384, 128),
        "stride": 16,
        "params": 85800192,
        "official_url": "https://drive.google.com/file/d/1T-EVjOtw1fJ4Mk7k-fU7ZeAGjUtSrNbh/view",
        "source": "https://github.com/CASIA-IVA-Lab/PASS-reID (README, Supervised ReID)",
    },
}
