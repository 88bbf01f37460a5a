"""Architectures as plain data (ViT sizes of DINO / PASS, 16x16 patches)."""

ARCHITECTURES = {
    "vit_tiny": {"hidden_dim": 192, "num_layers": 12, "num_heads": 3, "mlp_dim": 768},
    "vit_small": {"hidden_dim": 384, "num_layers": 12, "num_heads": 6, "mlp_dim": 1536},
    "vit_base": {"hidden_dim": 768, "num_layers": 12, "num_heads": 12, "mlp_dim": 3072},
}

DEFAULT_BACKBONE_CONFIG = {
    "image_shape": (256, 128, 3),
    "patch_size": 16,
    "stride": 16,
    "num_parts": 3,
}


def arch_config(arch, **overrides):
    """Full `PASSBackbone` kwargs for a named architecture."""
    if arch not in ARCHITECTURES:
        raise ValueError(
            f"Expected `arch` in {sorted(ARCHITECTURES)}. Received: arch={arch}"
        )
    return {**DEFAULT_BACKBONE_CONFIG, **ARCHITECTURES[arch], **overrides}
