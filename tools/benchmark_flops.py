"""Analytic FLOP counts (multiply-add = 2 FLOPs) of the benchmarked steps."""


def vit_forward_flops(config, patches, extra_tokens):
    """One image through the backbone: `patches` patch tokens plus
    `extra_tokens` CLS/PART tokens."""
    d, mlp, patch = config["hidden_dim"], config["mlp_dim"], config["patch_size"]
    tokens = patches + extra_tokens
    embed = patches * 2 * patch * patch * 3 * d
    per_layer = tokens * 2 * d * (3 * d + d + 2 * mlp) + 2 * 2 * tokens * tokens * d
    return embed + config["num_layers"] * per_layer


def head_flops(d, out_dim, hidden=2048, bottleneck=256):
    return 2 * (d * hidden + hidden * hidden + hidden * bottleneck + bottleneck * out_dim)


def pass_step_flops(config, batch, out_dim, crops_per_part=3):
    """Student forward+backward (x3) on 2 globals (132 tokens) and
    3 x crops_per_part locals (34 tokens), teacher forward on the globals."""
    d, parts = config["hidden_dim"], config["num_parts"]
    num_local = parts * crops_per_part
    globals_ = 2 * batch * (vit_forward_flops(config, 128, 1 + parts) + (1 + parts) * head_flops(d, out_dim))
    locals_ = num_local * batch * (vit_forward_flops(config, 32, 2) + 2 * head_flops(d, out_dim))
    return 3 * (globals_ + locals_) + globals_


def reid_step_flops(config, batch):
    return 3 * batch * vit_forward_flops(config, 128, 1 + config["num_parts"])
