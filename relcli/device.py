"""The one device/dtype probe every stage uses (generator, finetune, classifier, index embedder).

``auto`` picks, in order: a CUDA GPU (bf16 where it supports it, else fp16), Apple MPS (fp32:
its bf16/fp16 training support varies by macOS version), a CPU with bf16 units (avx512_bf16 or
amx_bf16 in /proc/cpuinfo) in bf16, any other CPU in fp32. On a CPU without bf16 units torch
emulates bf16 about 77x slower than fp32, so bf16 is never chosen there unless asked for.
``RELCLI_DEVICE`` / ``RELCLI_DTYPE`` set the defaults for Makefiles and job scripts; an explicit
option wins over them.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from relcli.errors import UserError

DTYPES = {"auto": "auto", "float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
          "float16": "float16", "fp16": "float16"}


@functools.cache
def cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    line = next((line for line in text.splitlines() if line.startswith(("flags", "Features"))), "")
    return frozenset(line.partition(":")[2].split())


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX)."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def cpu_name() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    return next((line.partition(":")[2].strip() for line in text.splitlines() if line.startswith("model name")), "unknown CPU")


@dataclass(frozen=True)
class Placement:
    """Where a model runs and in which precision."""

    device: str  # "cpu", "cuda", "cuda:1", "mps"
    dtype: str  # "float32", "bfloat16", "float16"

    @property
    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)

    @property
    def is_cpu(self) -> bool:
        return self.device == "cpu"

    @property
    def half(self) -> bool:
        """Whether compute runs in a 16-bit type (autocast during training)."""
        return self.dtype != "float32"

    def describe(self) -> str:
        where = cpu_name() if self.is_cpu else self.device
        return f"{self.device} ({where}), {self.dtype}"


def _auto_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _auto_dtype(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if device == "cpu":
        return "bfloat16" if cpu_has_bf16() else "float32"
    return "float32"


def placement(device: str | None = None, dtype: str | None = None) -> Placement:
    """Resolve device and dtype (None: the environment's RELCLI_DEVICE / RELCLI_DTYPE, else auto)."""
    import torch

    # An empty value given is not "unset": it is refused below like any unknown name.
    device = (device if device is not None else os.environ.get("RELCLI_DEVICE") or "auto").strip().lower()
    dtype = (dtype if dtype is not None else os.environ.get("RELCLI_DTYPE") or "auto").strip().lower()
    if dtype not in DTYPES:
        raise UserError(f"unknown dtype {dtype!r} (auto, float32, bfloat16, float16)", param="dtype")
    if device == "auto":
        device = _auto_device()
    elif device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"device {device!r} asked for, but torch sees no CUDA GPU", param="device")
        index = device.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise UserError(f"no CUDA device {device!r} ({torch.cuda.device_count()} visible)", param="device")
    elif device == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            raise UserError("device 'mps' asked for, but torch sees no Apple GPU", param="device")
    elif device != "cpu":
        raise UserError(f"unknown device {device!r} (auto, cpu, cuda, cuda:N, mps)", param="device")
    dtype = DTYPES[dtype]
    return Placement(device, _auto_dtype(device) if dtype == "auto" else dtype)
