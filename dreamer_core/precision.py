"""Which compute precision the learner uses, chosen from the config and what the hardware can do.

bfloat16 autocast pays only where the device has bf16 matrix units: CUDA GPUs that support bf16,
and CPUs with AVX-512 BF16 or AMX. On other CPUs (e.g. AVX2-only) torch falls back to a slow bf16
path that measured 4–50× slower than float32 (docs/BENCHMARKS.md), so ``auto`` picks float32 there
and an explicit ``bf16`` runs but warns.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

log = logging.getLogger(__name__)

# /proc/cpuinfo flags of the x86 units that make bf16 matmuls fast.
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@dataclass(frozen=True)
class Precision:
    """The chosen compute dtype of the matmul-heavy parts and why it was chosen."""

    dtype: torch.dtype
    device_type: str
    reason: str

    @property
    def name(self) -> str:
        return "bf16" if self.dtype == torch.bfloat16 else "float32"

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast region for matmuls and linears; a no-op in float32."""
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU feature flags of the first processor listed (empty where there is no /proc/cpuinfo)."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def bf16_support(device: torch.device) -> tuple[bool, str]:
    """Whether ``device`` has fast bf16 matmuls, with the evidence in words."""
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return True, f"CUDA device {torch.cuda.get_device_name(device)} supports bf16"
        return False, f"CUDA device {torch.cuda.get_device_name(device)} has no bf16 support"
    if device.type != "cpu":
        return False, f"no bf16 detection for device type {device.type!r}"
    capability = torch.backends.cpu.get_cpu_capability()
    found = sorted(set(CPU_BF16_FLAGS) & cpu_flags())
    if found or torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return True, f"CPU has bf16 matrix units (torch capability {capability}, flags {found or 'n/a'})"
    return False, (f"CPU has no AVX-512 BF16 or AMX (torch capability {capability}; none of "
                   f"{', '.join(CPU_BF16_FLAGS)} in /proc/cpuinfo)")


def choose_precision(requested: str, device: torch.device) -> Precision:
    """Resolve the config's ``precision`` (``auto``, ``float32`` or ``bf16``) for ``device`` and log it.

    ``auto`` takes bf16 only where :func:`bf16_support` finds bf16 units. An explicit ``bf16`` on a
    device without them is honoured (it computes what bf16 units would, only slower) with a warning.
    """
    if requested == "float32":
        choice = Precision(torch.float32, device.type, "precision: float32 in the config")
    else:
        supported, evidence = bf16_support(device)
        if requested == "bf16":
            if not supported:
                log.warning("precision: bf16 was requested but %s; bf16 autocast runs there on a slow path "
                            "(measured 4-50x slower than float32 on an AVX2 CPU). Use precision: auto or "
                            "float32 on this machine.", evidence)
            choice = Precision(torch.bfloat16, device.type, f"precision: bf16 in the config ({evidence})")
        elif supported:
            choice = Precision(torch.bfloat16, device.type, f"precision: auto chose bf16: {evidence}")
        else:
            choice = Precision(torch.float32, device.type, f"precision: auto chose float32: {evidence}")
    log.info("learner compute precision %s on %s: %s", choice.name, device, choice.reason)
    return choice
