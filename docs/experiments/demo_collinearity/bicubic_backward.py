# Section 9 of docs/experiments/demo_diagnosis.md: PyTorch's bicubic backward at the DINO scale
# factor on an 8x4 grid (output size = input size) against the adjoint of its forward
# (keras-pass's interpolation matrices) and of the identity. PYTHONPATH=. python THIS
import numpy as np
import torch

from keras_pass.models.pos_embed import cubic_matrix

H, W = 8, 4
x = torch.randn(1, 5, H, W, dtype=torch.float64, requires_grad=True)
y = torch.nn.functional.interpolate(x, scale_factor=((H + 0.1) / H, (W + 0.1) / W), mode="bicubic")
g = torch.randn_like(y)
(y * g).sum().backward()
rows, cols = cubic_matrix(H, H, (H + 0.1) / H), cubic_matrix(W, W, (W + 0.1) / W)
forward = np.einsum("ah,bw,chw->cab", rows, cols, x.detach().numpy()[0])
print("forward max abs diff", np.abs(forward - y.detach().numpy()[0]).max())
for name, (r, c) in {"its forward": (rows, cols), "the identity": (np.eye(H), np.eye(W))}.items():
    adjoint = np.einsum("ah,bw,cab->chw", r, c, g.numpy()[0])
    print(f"backward vs adjoint of {name}: rel diff",
          np.linalg.norm(adjoint - x.grad.numpy()[0]) / np.linalg.norm(adjoint))
