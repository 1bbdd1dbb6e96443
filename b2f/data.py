"""Shard samples as training tensors: crops read through the shard reader, optional flips, loaders.

Augmentation is a pure function of (seed, epoch, index), and the sampler's order of (seed, epoch):
a run resumed from an end-of-epoch checkpoint sees exactly the batches the uninterrupted run saw.
"""

import os
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from blurgen.core.errors import BlurgenError, first_line
from blurgen.shards import ShardReader

TRAIN_FIELDS = ("blurred", "flow_fwd", "valid")
EVAL_FIELDS = ("blurred", "flow_fwd", "flow_bwd", "valid")


class SampleError(BlurgenError):
    """A sample that cannot be read. A DataLoader worker's error reaches the main process rebuilt from
    its whole traceback (``Caught … in DataLoader worker process 0. Original Traceback …``): this keeps
    just the original message, so the CLIs still print one line."""

    def __init__(self, message: str = ""):
        if message.startswith("Caught ") and "Original Traceback" in message:
            last = message.rstrip().splitlines()[-1]
            message = last.split(f"{type(self).__name__}: ", 1)[-1]
        super().__init__(message)


def to_input(image: torch.Tensor) -> torch.Tensor:
    """uint8 B×3×H×W (as loaders deliver it) -> the model's float input in [0, 1]. Done on the device: a
    uint8 batch is a quarter of the bytes to copy and pin."""
    return image.float().div_(255)


class ShardDataset(Dataset):
    """Samples of one split as dicts of tensors: ``image`` 3×h×w uint8 (see :func:`to_input`),
    ``flow_fwd``/``flow_bwd`` 2×h×w pixels, ``valid`` h×w bool, ``index``.

    ``crop=(h, w)`` takes the centre window (or a random one with ``random_crop``); ``None`` keeps whole
    images. ``flip`` mirrors left-right and up-down, each with probability 1/2, negating u or v: a
    mirrored blur is the blur of the mirrored motion, and time runs the same way, so fwd stays fwd.
    ``scale=(lo, hi)`` resamples each crop from a window 1/f times its size, f log-uniform in [lo, hi]
    (at most the image), and multiplies the flow by f: a rescaled blur is the blur of the rescaled
    motion, so the model sees every blur length on every texture. ``photometric`` draws a
    :class:`Photometric` change per sample (the flow is unchanged).
    Items are fetched by index, or by ``(index, epoch)`` from :class:`EpochSampler` for augmentation.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str,
        crop: tuple[int, int] | None = None,
        random_crop: bool = False,
        flip: bool = False,
        seed: int = 0,
        fields: tuple[str, ...] = TRAIN_FIELDS,
        allow_incomplete: bool = False,
        scale: tuple[float, float] | None = None,
        photometric: bool = False,
    ):
        """``allow_incomplete``: use the samples of a split whose generation has not finished (killed)."""
        self.reader = ShardReader(root, split)
        state = self.reader.manifest["splits"][split]
        if not state["complete"] and not allow_incomplete:
            of = f" of {state['tasks']}" if "tasks" in state else ""
            raise BlurgenError(
                f"{root}: split '{split}' is incomplete ({state['tasks_done']}{of} tasks generated, its run was "
                "interrupted); rerun the command that made it, or pass --allow-incomplete to use what is there"
            )
        if len(self.reader) == 0:
            raise BlurgenError(f"{root}: split '{split}' has no samples; generate some or pick another split")
        self.crop, self.random_crop, self.flip, self.seed = crop, random_crop, flip, seed
        self.scale, self.photometric = scale, photometric
        if scale is not None and (crop is None or not 0 < scale[0] <= scale[1]):
            raise BlurgenError(f"scale augmentation {scale}: needs a crop and 0 < low <= high")
        self.fields = tuple(fields)
        if crop is not None:
            small = [(s["H"], s["W"]) for s in self.reader.shards if s["H"] < crop[0] or s["W"] < crop[1]]
            if small:
                raise BlurgenError(
                    f"{root}: split '{split}' has {small[0][0]}x{small[0][1]} images, smaller than "
                    f"the {crop[0]}x{crop[1]} crop; use a smaller --crop"
                )

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        try:
            return self._item(key)
        except BlurgenError as e:  # one line in the main process, also from a DataLoader worker
            raise SampleError(str(e)) from None
        except Exception as e:
            raise SampleError(f"{self.reader.root}: sample {key} ({type(e).__name__}: {first_line(e, 300)})") from None

    def _item(self, key: int | tuple[int, int]) -> dict:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        rng = np.random.default_rng([self.seed, epoch, index])
        H, W = self.reader.size(index)
        window = None
        if self.crop is not None:
            h, w = self.crop
            if self.scale is not None:  # the window the crop is resampled from
                f = float(np.exp(rng.uniform(np.log(self.scale[0]), np.log(self.scale[1]))))
                h, w = min(H, round(h / f)), min(W, round(w / f))
            if self.random_crop:
                y, x = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
            else:
                y, x = (H - h) // 2, (W - w) // 2
            window = (y, x, h, w)
        s = self.reader.read(index, crop=window, fields=self.fields, meta=False)
        flows = [name for name in ("flow_fwd", "flow_bwd") if name in s]
        if self.scale is not None:
            s = resample(s, self.crop)
        if self.flip:
            for axis, component in ((1, 0), (0, 1)):  # left-right negates u, up-down negates v
                if rng.random() < 0.5:
                    for name in ("blurred", "valid", *flows):
                        s[name] = np.flip(s[name], axis)
                    for name in flows:
                        s[name] = s[name] * np.array([-1, 1] if component == 0 else [1, -1], np.float32)
        if self.photometric:
            s["blurred"] = Photometric.draw(rng).apply(s["blurred"], rng)
        out = {
            "index": index,
            "image": torch.from_numpy(np.ascontiguousarray(s["blurred"])).permute(2, 0, 1).contiguous(),
            "valid": torch.from_numpy(np.ascontiguousarray(s["valid"]) != 0),
        }
        for name in flows:
            out[name] = torch.from_numpy(np.ascontiguousarray(s[name])).permute(2, 0, 1).contiguous()
        return out


def resample(sample: dict, size: tuple[int, int]) -> dict:
    """``sample``'s arrays resized to ``size`` (h, w), the flows' u and v multiplied by the width and
    height ratios: the same motion seen at another scale. Images by area averaging when shrinking
    (bilinear when growing), flows bilinearly, masks by the nearest pixel."""
    h, w = size
    H, W = sample["blurred"].shape[:2]
    sx, sy = w / W, h / H
    area = cv2.INTER_AREA if sx * sy < 1 else cv2.INTER_LINEAR
    out = dict(sample)
    for name, array in sample.items():
        if name in ("flow_fwd", "flow_bwd"):
            out[name] = cv2.resize(array, (w, h), interpolation=cv2.INTER_LINEAR) * np.array([sx, sy], np.float32)
        elif name == "valid":
            out[name] = cv2.resize(array, (w, h), interpolation=cv2.INTER_NEAREST)
        elif name == "blurred":
            out[name] = cv2.resize(array, (w, h), interpolation=area)
    return out


@dataclass(frozen=True)
class Photometric:
    """A camera's photometric differences: ``out = clip(255 * (gain_c * (v/255) ** gamma + offset) + noise)``,
    per colour channel c, with Gaussian noise of ``noise`` (8-bit levels), rounded to uint8."""

    gamma: float = 1.0
    gains: tuple[float, float, float] = (1.0, 1.0, 1.0)
    offset: float = 0.0
    noise: float = 0.0

    @classmethod
    def draw(cls, rng: np.random.Generator) -> "Photometric":
        """Gamma log-uniform in [0.7, 1.4], an overall gain in [0.75, 1.25] times a channel gain in
        [0.9, 1.1] each, offset in [-0.08, 0.08], noise sigma in [0, 4] levels."""
        gain = rng.uniform(0.75, 1.25)
        return cls(
            gamma=float(np.exp(rng.uniform(np.log(0.7), np.log(1.4)))),
            gains=tuple(float(gain * g) for g in rng.uniform(0.9, 1.1, 3)),
            offset=float(rng.uniform(-0.08, 0.08)),
            noise=float(rng.uniform(0.0, 4.0)),
        )

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """uint8 H×W×3 -> uint8 H×W×3; ``rng`` draws the noise."""
        curve = (np.arange(256) / 255.0) ** self.gamma  # a table: one lookup per pixel, not a power
        value = 255.0 * (curve[image] * np.array(self.gains) + self.offset)
        if self.noise > 0:
            value += rng.normal(0.0, self.noise, image.shape)
        return np.clip(value + 0.5, 0, 255).astype(np.uint8)


class EpochSampler(DistributedSampler):
    """DistributedSampler (order fixed by seed and epoch; Lightning calls ``set_epoch``) that hands the
    epoch to the dataset with each index, so per-sample augmentation is reproducible too."""

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((i, self.epoch) for i in super().__iter__())


def loader_workers() -> int:
    """Default DataLoader workers: the cores torch may use, at most 8 (HDF5 reads and crops are cheap)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(8, cores)


class ShardDataModule(L.LightningDataModule):
    """Train and validation loaders (the trainer skips validation when there is no val set). Samplers are
    built here because only now are the world size and rank known, so the same code serves one device and DDP."""

    def __init__(
        self,
        train: Dataset,
        val: Dataset | None = None,
        batch_size: int = 4,
        workers: int = 0,
        seed: int = 0,
        pin_memory: bool = False,
        start_epoch: int = 0,
    ):
        super().__init__()
        self.train_set, self.val_set, self.start_epoch = train, val, start_epoch
        self.batch_size, self.workers, self.seed, self.pin_memory = batch_size, workers, seed, pin_memory

    def _loader(self, dataset, sampler):
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        sampler = EpochSampler(
            self.train_set,
            num_replicas=self.trainer.world_size,
            rank=self.trainer.global_rank,
            shuffle=True,
            seed=self.seed,
        )
        # A resumed fit makes its loader's iterator before it restores the epoch counter and calls set_epoch,
        # and with workers that iterator draws its first indices at once (with workers 0 the draw came later):
        # so the sampler must start at the resumed epoch, which train() passes as start_epoch
        sampler.set_epoch(self.start_epoch)
        return self._loader(self.train_set, sampler)

    def val_dataloader(self) -> DataLoader:
        sampler = DistributedSampler(
            self.val_set, num_replicas=self.trainer.world_size, rank=self.trainer.global_rank, shuffle=False
        )
        return self._loader(self.val_set, sampler)
