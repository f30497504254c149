"""Training precision for the CPU: bf16 autocast where the CPU computes in bf16, fp32 elsewhere.

Measured on this project's 2-core AMD EPYC VM (``avx512_bf16``): the quickstart's training step
(batch 64, two 64 px cameras) takes 213 ms in fp32 and 132 ms under bf16 autocast with eager
attention (1.6x); convolutions run 3x and matmuls 2x faster. CPUs without bf16 instructions
emulate it, and the same step is far slower (~25x measured on one) — so ``configs/trainer/cpu.yaml``
asks ``${vla.cpu_precision:}``, which picks ``bf16-mixed`` only where the hardware has it.
Weights, optimizer state and gradients stay fp32 either way (Lightning's mixed precision); override
with ``trainer.precision=32-true`` for bit-exact fp32 runs.
"""

import platform
from pathlib import Path

from omegaconf import OmegaConf

# /proc/cpuinfo flags (x86) / features (aarch64) that mean native bf16 arithmetic
BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` text (empty where there is none)."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text() if path.is_file() else ""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return flags


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """True where the CPU has bf16 instructions (AVX512-BF16, AMX, Arm BF16)."""
    if cpuinfo is None and platform.system() == "Darwin":
        return False  # no /proc/cpuinfo; Apple's bf16 support in torch CPU kernels is partial
    return bool(cpu_flags(cpuinfo) & BF16_FLAGS)


def cpu_precision() -> str:
    """Lightning ``precision`` for CPU training: ``bf16-mixed`` with bf16 hardware, else fp32."""
    return "bf16-mixed" if cpu_has_bf16() else "32-true"


# `${vla.cpu_precision:}` in configs (registered when vla is imported)
OmegaConf.register_new_resolver("vla.cpu_precision", cpu_precision, replace=True)
