"""What the benches share: memory from /proc and waiting for a GPU before reading a clock."""

import torch


def status_kb(field: str) -> int:
    """A ``/proc/self/status`` figure in kB (``VmRSS`` now, ``VmHWM`` the peak): no library reports the
    peak resident memory of this process on CPU and GPU runs alike."""
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so a clock read after it measures the work, not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
