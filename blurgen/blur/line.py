"""The per-pixel line-kernel blur of a motion flow (Gong et al. 2017) and its adjoint, in torch.

Blurred pixel p is the mean of the sharp image along the segment p + t·flow(p), t in [-1/2, 1/2]
(length |flow|). The segment is sampled at unit steps k = 0, ±1, ±2, … along its direction; tap k
weighs the length of [k - 1/2, k + 1/2] that the segment covers, so the ends are anti-aliased and a
horizontal flow of odd integer length L is exactly a 1×L box. Each tap reads the image bilinearly
(a line of width 1) at a position clamped into the frame (replicated borders); weights sum to 1.
Lengths below 1 px are the identity.

The operator is a sparse matrix with one row per pixel, built once per flow as a torch CSR matrix
(its transpose when first needed) on the flow's device, so A and Aᵀ are each one sparse product for
all channels at once. A hand-built kernel table is needed because no library offers spatially varying
line kernels; the products are torch's.
"""

import math
import warnings

import numpy as np
import torch


def line_entries(flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """COO entries ``(rows, cols, weights)`` of the blur matrix of ``flow`` (2×H×W, px), rows sorted.

    Rows and columns index pixels in row-major order; zero weights are left out, and a row may name
    a column more than once (clamped border taps), which sums.
    """
    if flow.ndim != 3 or flow.shape[0] != 2:
        raise ValueError(f"flow must be 2×H×W, got {tuple(flow.shape)}")
    _, h, w = flow.shape
    if h < 2 or w < 2:
        raise ValueError(f"flow must be at least 2×2 pixels, got {h}×{w}")
    flow = flow.to(torch.float32)
    dev = flow.device
    length = torch.linalg.vector_norm(flow, dim=0).reshape(-1)  # N
    span = length.clamp(min=1.0)  # below one pixel the segment stays in one cell: the identity
    direction = flow.reshape(2, -1) / length.clamp(min=1e-12)
    k_max = int(math.floor((float(span.max()) + 1) / 2))
    ks = torch.arange(-k_max, k_max + 1, device=dev, dtype=torch.float32)[None, :]  # 1×T
    half = span[:, None] / 2
    weight = (torch.minimum(ks + 0.5, half) - torch.maximum(ks - 0.5, -half)).clamp(0, 1) / span[:, None]  # N×T

    pixel, tap = torch.nonzero(weight > 0, as_tuple=True)  # taps the segment covers, row-major: rows sorted
    step = ks[0, tap]
    px = ((pixel % w).to(torch.float32) + step * direction[0, pixel]).clamp(0, w - 1)
    py = (torch.div(pixel, w, rounding_mode="floor").to(torch.float32) + step * direction[1, pixel]).clamp(0, h - 1)
    x0 = px.floor().clamp(max=w - 2)
    y0 = py.floor().clamp(max=h - 2)
    fx, fy = px - x0, py - y0
    base = y0.long() * w + x0.long()
    cols = torch.stack([base, base + 1, base + w, base + w + 1], dim=-1)  # M×4 bilinear corners
    bilinear = torch.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], dim=-1)
    weights = weight[pixel, tap][:, None] * bilinear
    keep = weights > 0
    return pixel[:, None].expand_as(cols)[keep], cols[keep], weights[keep]


class LineBlur:
    """The blur matrix A of one flow field: ``A(x)`` blurs, ``A.T(y)`` is the adjoint.

    ``flow``: 2×H×W tensor in pixels (u right, v down) on the device the operator runs on. Images are
    ``…×H×W`` float tensors (any leading dimensions, e.g. channels): all are blurred in one product.
    """

    def __init__(self, flow: torch.Tensor):
        _, self.height, self.width = flow.shape
        rows, cols, weights = line_entries(flow)
        n = self.height * self.width
        self.nnz = int(weights.numel())
        with warnings.catch_warnings():  # "sparse CSR support is in beta": it is what we use, on purpose
            warnings.simplefilter("ignore", UserWarning)
            # int32 indices (as scipy's) where they fit: the sparse products run markedly faster
            index = torch.int32 if max(n, self.nnz) < 2**31 else torch.int64
            crow = torch.zeros(n + 1, dtype=index, device=flow.device)
            crow[1:] = torch.bincount(rows, minlength=n).cumsum(0)
            self.matrix = torch.sparse_csr_tensor(crow, cols.to(index), weights, (n, n))
        self._matrix_t = None  # built on the first adjoint: blurring alone never needs it

    def _product(self, matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.height, self.width):
            raise ValueError(f"image is {tuple(x.shape[-2:])}, the flow {self.height}×{self.width}")
        flat = x.reshape(-1, self.height * self.width).to(torch.float32)
        return (matrix @ flat.T).T.reshape(x.shape)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """A x: the blurred images."""
        return self._product(self.matrix, x)

    def T(self, y: torch.Tensor) -> torch.Tensor:  # noqa: N802 - the adjoint's usual name
        """Aᵀ y: the adjoint (each blurred pixel spread back along its line)."""
        if self._matrix_t is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                self._matrix_t = self.matrix.t().to_sparse_csr()
        return self._product(self._matrix_t, y)


def line_blur(image: np.ndarray, flow: np.ndarray, device: str | torch.device = "cpu") -> np.ndarray:
    """Blur a uint8 H×W×3 image by the line kernels of ``flow`` (H×W×2 px); uint8 H×W×3, rounded."""
    flow_t = torch.from_numpy(np.ascontiguousarray(flow, np.float32)).permute(2, 0, 1).to(device)
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).to(device, torch.float32)
    y = LineBlur(flow_t)(x)
    return y.clamp(0, 255).add(0.5).floor().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
