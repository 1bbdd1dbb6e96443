"""The sample schema: field names, dtypes and channels, shared by the writer, reader and verify.

Versions: v1 (sha256 checksums) and v2 (xxh3-128) hold the required fields and, with --keep-frames,
the frame fields. v3 adds optional fields a source may declare (``sharp``, ``moving``); a folder holds
the same fields in every shard, and readers ignore fields they do not ask for.
"""

import numpy as np

# field: (dtype, channels or None for H×W)
FIELDS = {
    "blurred": (np.uint8, 3),
    "flow_fwd": (np.float32, 2),
    "flow_bwd": (np.float32, 2),
    "valid": (np.uint8, None),
}
FRAME_FIELDS = {"first": (np.uint8, 3), "last": (np.uint8, 3)}  # with --keep-frames
OPTIONAL_FIELDS = {
    "sharp": (np.uint8, 3),  # the latent sharp image of a line-kernel (Gong-style) blur
    "moving": (np.uint8, None),  # 1 where the first frame shows an independently moving object
}
OPTIONAL_SINCE = 3  # the first format version that may hold OPTIONAL_FIELDS
MASK_FIELDS = ("valid", "moving")  # 0/1 per pixel
ALL_FIELDS = {**FIELDS, **FRAME_FIELDS, **OPTIONAL_FIELDS}
ARRAY_FIELDS = tuple(FIELDS)  # what a reader returns by default
