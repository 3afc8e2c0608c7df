"""The one device/dtype probe, on every machine class (torch's view of the hardware monkeypatched)."""

from __future__ import annotations

import pytest

from relcli import device
from relcli.errors import UserError


@pytest.fixture
def machine(monkeypatch):
    """Pretend to be a machine: which GPU torch sees and which bf16 flags the CPU shows."""
    import torch

    monkeypatch.delenv("RELCLI_DEVICE", raising=False)
    monkeypatch.delenv("RELCLI_DTYPE", raising=False)

    def set_machine(cuda=False, cuda_bf16=False, mps=False, cpu_flags=("avx2",)):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: cuda_bf16)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: int(cuda))
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
        monkeypatch.setattr(device, "cpu_flags", lambda: frozenset(cpu_flags))

    return set_machine


@pytest.mark.parametrize("hardware, expected", [
    (dict(cuda=True, cuda_bf16=True), ("cuda", "bfloat16")),
    (dict(cuda=True, cuda_bf16=False), ("cuda", "float16")),
    (dict(mps=True), ("mps", "float32")),
    (dict(cpu_flags=("avx2", "avx512_bf16")), ("cpu", "bfloat16")),
    (dict(cpu_flags=("avx2", "amx_bf16", "amx_tile")), ("cpu", "bfloat16")),
    (dict(cpu_flags=("avx2", "avx512f", "avx512_vnni")), ("cpu", "float32")),  # Ice Lake: AVX-512, no bf16
    (dict(cpu_flags=("avx2", "fma")), ("cpu", "float32")),  # Zen 3 and most laptops
])
def test_auto_picks_device_and_dtype_per_machine_class(machine, hardware, expected):
    machine(**hardware)
    place = device.placement()
    assert (place.device, place.dtype) == expected


def test_explicit_options_win_over_the_environment_which_wins_over_auto(machine, monkeypatch):
    machine(cpu_flags=("avx512_bf16",))
    monkeypatch.setenv("RELCLI_DTYPE", "float32")
    assert device.placement().dtype == "float32"
    assert device.placement(dtype="bf16").dtype == "bfloat16"
    monkeypatch.setenv("RELCLI_DEVICE", "cpu")
    assert device.placement().device == "cpu"


@pytest.mark.parametrize("options, message", [
    (dict(dtype="fp8"), "unknown dtype"),
    (dict(device="tpu"), "unknown device"),
    (dict(device="cuda"), "no CUDA GPU"),
    (dict(device="mps"), "no Apple GPU"),
])
def test_bad_or_absent_hardware_is_a_user_error_naming_its_parameter(machine, options, message):
    machine()
    with pytest.raises(UserError, match=message) as caught:
        device.placement(**options)
    assert caught.value.param == next(iter(options))


def test_a_cuda_index_must_exist(machine):
    machine(cuda=True, cuda_bf16=True)
    assert device.placement(device="cuda:0").device == "cuda:0"
    with pytest.raises(UserError, match="no CUDA device 'cuda:3'"):
        device.placement(device="cuda:3")


def test_cpu_flags_are_read_from_this_machine():
    assert isinstance(device.cpu_has_bf16(), bool) and device.cpu_name()
