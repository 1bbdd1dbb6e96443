"""Flow files: .flo, .pfm, KITTI .png and .npy, through ptlflow's readers with our checks.

ptlflow marks invalid vectors as NaN; we return a separate ``valid`` mask instead, because shards
store finite flow plus a mask, and we raise one clear error for any file that is not what it claims.
"""

import os
import warnings
from pathlib import Path

import numpy as np

from .errors import BlurgenError

FORMATS = ("flo", "pfm", "png", "npy")


def _flowutils():
    # Imported lazily: `import ptlflow` prints to stdout and costs seconds, and most commands never need it.
    from .quiet import quiet_import

    return quiet_import("ptlflow.utils.flow_utils")


def _format(path, fmt):
    fmt = fmt or Path(path).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise BlurgenError(f"{path}: unknown flow format '{fmt}'; use one of {', '.join(FORMATS)}")
    return fmt


def read_flow(path: str | os.PathLike, fmt: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read a flow file; returns ``(flow float32 H×W×2, valid uint8 H×W)``.

    Vectors the format marks invalid (NaN, the .flo sentinel, the PFM/KITTI mask) are 0 with valid 0;
    callers that expect dense ground truth decide whether that is an error.
    """
    path = Path(path)
    fmt = _format(path, fmt)
    if not path.is_file():
        raise BlurgenError(f"{path}: flow file not found")
    try:
        if fmt == "flo":
            _check_flo(path)
        with warnings.catch_warnings():  # flowpy's .flo reader warns about its own NaN masking
            warnings.simplefilter("ignore", UserWarning)
            flow = np.asarray(_flowutils().flow_read(str(path), format=fmt), dtype=np.float32)
    except BlurgenError:
        raise
    except Exception as e:  # the readers raise anything from ValueError to png.FormatError
        raise BlurgenError(f"{path}: not a readable .{fmt} flow file ({e}); re-export or remove it") from None
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise BlurgenError(f"{path}: expected a 2-channel flow, got shape {flow.shape}")
    invalid = ~np.isfinite(flow).all(axis=2)
    flow[invalid] = 0
    return np.ascontiguousarray(flow), (~invalid).astype(np.uint8)


def _check_flo(path):
    """ptlflow only warns on a bad tag and reshapes whatever follows; a truncated file must fail here."""
    with open(path, "rb") as f:
        head = f.read(12)
    if len(head) < 12 or head[:4] != b"PIEH":
        raise BlurgenError(f"{path}: not a .flo file (missing 'PIEH' tag)")
    w, h = np.frombuffer(head[4:], "<i4")
    if path.stat().st_size != 12 + 8 * int(w) * int(h):
        raise BlurgenError(f"{path}: truncated .flo file ({w}x{h} needs {12 + 8 * int(w) * int(h)} bytes)")


def write_flow(
    path: str | os.PathLike, flow: np.ndarray, valid: np.ndarray | None = None, fmt: str | None = None
) -> None:
    """Write ``flow`` (H×W×2, pixels); ``valid`` zeros become NaN (.flo/.pfm) or the KITTI valid bit (.png)."""
    path = Path(path)
    fmt = _format(path, fmt)
    flow = np.array(flow, dtype=np.float32)
    if valid is not None:
        flow[valid == 0] = np.nan
    _flowutils().flow_write(str(path), flow, format=fmt)
