"""The per-pixel line-kernel blur of a motion flow (Gong et al. 2017) and its adjoint, in torch.

Blurred pixel p is the mean of the sharp image along the segment p + t·flow(p), t in [-1/2, 1/2]
(length |flow|). The segment is sampled at unit steps k = 0, ±1, ±2, … along its direction; tap k
weighs the length of [k - 1/2, k + 1/2] that the segment covers, so the ends are anti-aliased and a
horizontal flow of odd integer length L is exactly a 1×L box. Each tap reads the image bilinearly
(a line of width 1) at a position clamped into the frame (replicated borders); weights sum to 1.
Lengths below 1 px are the identity.

The operator is a sparse matrix with one row per pixel, built once per flow as a torch CSR matrix
(its transpose, from the same entries, when first needed) on the flow's device. A hand-built kernel
table is needed because no library offers spatially varying line kernels; the products are torch's.
"""

import warnings

import numpy as np
import torch


def line_entries(flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """COO entries ``(rows, cols, weights)`` of the blur matrix of ``flow`` (2×H×W, px).

    Rows and columns index pixels in row-major order. Each (row, column) appears once (the taps that
    meet in one pixel, e.g. clamped at a border, are summed), sorted by row then column, and zero
    weights are left out: the canonical sparse form of the matrix.
    """
    if flow.ndim != 3 or flow.shape[0] != 2:
        raise ValueError(f"flow must be 2×H×W, got {tuple(flow.shape)}")
    _, h, w = flow.shape
    if h < 2 or w < 2:
        raise ValueError(f"flow must be at least 2×2 pixels, got {h}×{w}")
    flow = flow.to(torch.float32)
    dev, n = flow.device, h * w
    u, v = flow[0].reshape(-1), flow[1].reshape(-1)
    length = torch.hypot(u, v)
    span = length.clamp(min=1.0)  # below one pixel the segment stays in one cell: the identity
    inv = 1 / length.clamp(min=1e-12)
    # taps |k| ≤ reach per pixel (the outermost may weigh 0), laid out pixel by pixel: no N×taps table
    reach = ((span + 1) / 2).floor().to(torch.int32)
    taps = 2 * reach + 1
    m = int(taps.sum())
    count = torch.int32 if m < 2**31 else torch.int64  # pixels and taps (m ≥ n)

    def each_tap(per_pixel: torch.Tensor) -> torch.Tensor:  # a per-pixel value repeated for its taps
        return torch.repeat_interleave(per_pixel, taps, output_size=m)

    pixel = each_tap(torch.arange(n, device=dev, dtype=count))
    step = torch.arange(m, device=dev, dtype=count) - each_tap(taps.cumsum(0, dtype=count) - reach - 1)
    step = step.to(torch.float32)
    half, scale = each_tap(span / 2), each_tap(1 / span)
    weight = (torch.minimum(step + 0.5, half) - torch.maximum(step - 0.5, -half)).clamp(0, 1) * scale

    xp, yp = pixel % w, torch.div(pixel, w, rounding_mode="floor")
    px = (xp.to(torch.float32) + step * each_tap(u * inv)).clamp(0, w - 1)
    py = (yp.to(torch.float32) + step * each_tap(v * inv)).clamp(0, h - 1)
    x0 = px.floor().clamp(max=w - 2)
    y0 = py.floor().clamp(max=h - 2)
    fx, fy = px - x0, py - y0
    bilinear = torch.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], dim=-1)  # M×4 corners

    # each corner as (pixel, offset from it) in one integer key; a sort groups a row's repeated columns
    r = int(reach.max()) + 1  # corners lie within r pixels of their row's pixel along x and y
    side = 2 * r + 1
    index = torch.int32 if n * side * side < 2**31 else torch.int64
    key = (pixel.to(index) * side + (y0.to(index) - yp + r)) * side + (x0.to(index) - xp + r)
    corners = torch.tensor([0, 1, side, side + 1], dtype=index, device=dev)
    keys, inverse = torch.unique((key[:, None] + corners).reshape(-1), return_inverse=True)
    values = torch.zeros(len(keys), device=dev).index_add_(0, inverse, (weight[:, None] * bilinear).reshape(-1))
    keep = torch.nonzero(values > 0).squeeze(1)
    keys, values = keys.index_select(0, keep), values.index_select(0, keep)
    rows = torch.div(keys, side * side, rounding_mode="floor")
    offset = keys - rows * (side * side)  # (dy + r) * side + (dx + r): the corner's offset from the row's pixel
    dy = torch.div(offset, side, rounding_mode="floor") - r
    return rows.long(), (rows + dy * w + (offset - (dy + r) * side - r)).long(), values


def _csr(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, n: int) -> torch.Tensor:
    """The n×n CSR matrix of entries sorted by row (then column)."""
    # int32 indices (as scipy's) where they fit: the sparse products run markedly faster
    index = torch.int32 if max(n, len(values)) < 2**31 else torch.int64
    crow = torch.zeros(n + 1, dtype=index, device=values.device)
    crow[1:] = torch.bincount(rows, minlength=n).cumsum(0)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": it is what we use, on purpose
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, cols.to(index), values, (n, n))


class LineBlur:
    """The blur matrix A of one flow field: ``A(x)`` blurs, ``A.T(y)`` is the adjoint.

    ``flow``: 2×H×W tensor in pixels (u right, v down) on the device the operator runs on. Images are
    ``…×H×W`` float tensors (any leading dimensions, e.g. channels): all are blurred in one product.
    """

    def __init__(self, flow: torch.Tensor):
        _, self.height, self.width = flow.shape
        rows, cols, weights = line_entries(flow)
        self.nnz = len(weights)
        self.matrix = _csr(rows, cols, weights, self.height * self.width)
        self._matrix_t = None  # built on the first adjoint: blurring alone never needs it

    @property
    def matrix_t(self) -> torch.Tensor:
        """Aᵀ as a CSR matrix: A's entries ordered by column (a stable sort keeps each column's rows sorted)."""
        if self._matrix_t is None:
            n = self.height * self.width
            crow, cols = self.matrix.crow_indices(), self.matrix.col_indices()
            rows = torch.repeat_interleave(torch.arange(n, device=cols.device, dtype=cols.dtype), crow.diff())
            cols, order = torch.sort(cols, stable=True)
            values = self.matrix.values().index_select(0, order)
            self._matrix_t = _csr(cols, rows.index_select(0, order), values, n)
        return self._matrix_t

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
        return self._product(self.matrix_t, y)


def line_blur(image: np.ndarray, flow: np.ndarray, device: str | torch.device = "cpu") -> np.ndarray:
    """Blur a uint8 H×W×3 image by the line kernels of ``flow`` (H×W×2 px); uint8 H×W×3, rounded."""
    flow_t = torch.from_numpy(np.ascontiguousarray(flow, np.float32)).permute(2, 0, 1).to(device)
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).to(device, torch.float32)
    y = LineBlur(flow_t)(x)
    return y.clamp(0, 255).add(0.5).floor().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
