"""The sample schema (the same in format v1 and v2): field names, dtypes and channels, shared by the
writer, reader and verify."""

import numpy as np

# field: (dtype, channels or None for H×W)
FIELDS = {
    "blurred": (np.uint8, 3),
    "flow_fwd": (np.float32, 2),
    "flow_bwd": (np.float32, 2),
    "valid": (np.uint8, None),
}
FRAME_FIELDS = {"first": (np.uint8, 3), "last": (np.uint8, 3)}  # with --keep-frames
ALL_FIELDS = {**FIELDS, **FRAME_FIELDS}
ARRAY_FIELDS = tuple(FIELDS)  # what a reader returns by default
