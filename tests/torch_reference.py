"""A small PyTorch transcription of the official PASS ViT, for parity tests.

Written for the tests from the description in PASS_SPEC.md: same token
layout, parameter names and position-embedding resampling as the release
(`PASS/vision_transformer.py` for `mode="always"`, `PASS_transreid` for
`mode="resize_only"`).
"""

import torch
import torch.nn.functional as F
from torch import nn


class ReferenceBlock(nn.Module):
    def __init__(self, dim, heads, mlp_dim):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.ModuleDict({"qkv": nn.Linear(dim, 3 * dim), "proj": nn.Linear(dim, dim)})
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.ModuleDict({"fc1": nn.Linear(dim, mlp_dim), "fc2": nn.Linear(mlp_dim, dim)})

    def attention(self, x):
        b, t, c = x.shape
        qkv = self.attn["qkv"](self.norm1(x)).reshape(b, t, 3, self.heads, c // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        weights = ((q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5).softmax(-1)
        return weights, v

    def forward(self, x):
        b, t, c = x.shape
        weights, v = self.attention(x)
        x = x + self.attn["proj"]((weights @ v).transpose(1, 2).reshape(b, t, c))
        return x + self.mlp["fc2"](F.gelu(self.mlp["fc1"](self.norm2(x))))


class ReferenceViT(nn.Module):
    def __init__(self, dim, depth, heads, mlp_dim, img_size, num_parts=3,
                 patch=16, stride=16, mode="always"):
        super().__init__()
        self.mode, self.num_parts = mode, num_parts
        self.grid = tuple((s - patch) // stride + 1 for s in img_size)
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, dim, patch, stride)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.cls_pos = nn.Parameter(torch.zeros(1, 1, dim))
        for i in range(1, num_parts + 1):
            setattr(self, f"part_token{i}", nn.Parameter(torch.zeros(1, 1, dim)))
            setattr(self, f"part{i}_pos", nn.Parameter(torch.zeros(1, 1, dim)))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1], dim))
        self.blocks = nn.ModuleList(ReferenceBlock(dim, heads, mlp_dim) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for name, p in self.named_parameters():
                noise = 0.2 * torch.randn(p.shape, generator=generator)
                p.copy_(1 + noise if "norm" in name and "weight" in name else noise)

    def positions(self, grid):
        if self.mode == "resize_only" and grid == self.grid:
            return self.pos_embed
        dim = self.pos_embed.shape[-1]
        pos = self.pos_embed.reshape(1, *self.grid, dim).permute(0, 3, 1, 2)
        scale = tuple((g + 0.1) / o for g, o in zip(grid, self.grid))
        pos = F.interpolate(pos, scale_factor=scale, mode="bicubic")
        assert tuple(pos.shape[-2:]) == grid
        return pos.permute(0, 2, 3, 1).reshape(1, -1, dim)

    def tokens(self, x, part_index=None):
        patches = self.patch_embed.proj(x)
        grid = tuple(patches.shape[-2:])
        patches = patches.flatten(2).transpose(1, 2)
        indices = range(1, self.num_parts + 1) if part_index is None else [part_index + 1]
        special = [self.cls_token + self.cls_pos] + [
            getattr(self, f"part_token{i}") + getattr(self, f"part{i}_pos") for i in indices
        ]
        special = torch.cat(special, 1).expand(x.shape[0], -1, -1)
        return torch.cat([special, patches + self.positions(grid)], 1)

    def forward(self, x, part_index=None):
        x = self.tokens(x, part_index)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        num_parts = self.num_parts if part_index is None else 1
        return x[:, 0], x[:, 1 : 1 + num_parts]

    def last_attention(self, x):
        x = self.tokens(x)
        for block in self.blocks[:-1]:
            x = block(x)
        return self.blocks[-1].attention(x)[0]


def run(model, images_nhwc, part_index=None):
    """Runs the reference on NHWC numpy images; returns numpy (cls, parts)."""
    with torch.no_grad():
        x = torch.from_numpy(images_nhwc).permute(0, 3, 1, 2).contiguous()
        return tuple(t.numpy() for t in model(x, part_index))
