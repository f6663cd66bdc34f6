"""Device and numeric-format choices: CUDA when present, bf16 autocast and channels_last there."""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import ContextManager, TextIO

import torch

from mollify.errors import MollifyError


log = logging.getLogger(__name__)

LOCKS_ENV = "MOLLIFY_GPU_LOCKS"
_leases: list[TextIO] = []  # open lock files: a lease lasts as long as the process


def resolve_device(name: str = "auto") -> torch.device:
    """cpu, or a CUDA device: under torchrun the rank's (LOCAL_RANK), else a free GPU leased for
    this process when several are visible (so that parallel grid jobs never share one)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise MollifyError("device: cuda was asked for but no CUDA device is visible; set `device: auto` or `cpu`.")
    if name != "cuda":
        return torch.device(name)
    if "LOCAL_RANK" in os.environ:
        index = int(os.environ["LOCAL_RANK"])
    else:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        ids = visible.split(",") if visible else [str(i) for i in range(torch.cuda.device_count())]
        index = lease_gpu(ids)
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def lease_gpu(ids: list[str], lock_dir: str | Path | None = None, poll_s: float = 5.0) -> int:
    """The index in `ids` (the visible GPUs' physical ids) of a GPU no other process of this machine
    holds, taken for the life of this process: an exclusive `flock` on `<lock_dir>/gpu<id>.lock`,
    which the kernel releases when the process ends, killed or not. Waits while all are taken.
    One visible GPU (e.g. one a scheduler assigned) needs no lease."""
    if len(ids) <= 1:
        return 0
    folder = Path(lock_dir or os.environ.get(LOCKS_ENV) or Path(tempfile.gettempdir()) / f"mollify-gpu-locks-{os.getuid()}")
    folder.mkdir(parents=True, exist_ok=True)
    waited = False
    while True:
        for index, gpu in enumerate(ids):
            lock = open(folder / f"gpu{gpu.strip()}.lock", "a")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                continue
            _leases.append(lock)
            log.info("leased GPU %s (lock %s)", gpu.strip(), lock.name)
            return index
        if not waited:
            log.info("all %d GPUs are leased by other jobs (locks in %s); waiting for one", len(ids), folder)
            waited = True
        time.sleep(poll_s)


def autocast(device: torch.device, precision: str) -> ContextManager:
    """bf16 autocast for `precision: bf16`, and for `auto` on CUDA; fp16 autocast for `fp16`; plain fp32 otherwise."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if precision == "fp16":
        return torch.autocast(device_type=device.type, dtype=torch.float16)
    return nullcontext()


def stream_seed(seed: int, index: int) -> int:
    """The seed of stream `index` (an epoch, a step, a diffusion time) of a run seeded with `seed`."""
    return seed * 1_000_003 + index


def seeded_generator(seed: int, index: int, device: torch.device | str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(stream_seed(seed, index))


class Normalize:
    """uint8 (B, C, H, W) -> float, standardised by the dataset's channel mean and std."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], device: torch.device, channels_last: bool = False):
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1) * 255
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return ((x.float() - self.mean) / self.std).contiguous(memory_format=self.memory_format)


# environment variables that pin CPU kernels (docs/demo.md: bit-identical CPU runs)
PINNING_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR", "OMP_NUM_THREADS")


def machine_info(device: torch.device) -> dict[str, object]:
    """What made a run's numbers: the CPU model, torch's CPU kernel level (the ISA its vectorised
    kernels use: default, avx2, avx512, ...), its thread count, the torch version, the kernel-pinning
    variables set, and on CUDA the GPU name and driver. CPU results can differ across machines in
    the last bits when these differ (docs/demo.md)."""
    info: dict[str, object] = {
        "cpu": _cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(), "torch": str(torch.__version__),
        "pinned": {k: os.environ[k] for k in PINNING_ENV if k in os.environ},
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
        info["driver"] = _nvidia_driver()
    return info


def _cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else the platform's processor string)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def _nvidia_driver() -> str | None:
    """The NVIDIA driver version (/proc/driver/nvidia/version), None where it cannot be read."""
    try:
        first = Path("/proc/driver/nvidia/version").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    words = [w for w in first.split() if w[:1].isdigit() and "." in w]
    return words[0] if words else first.strip()
