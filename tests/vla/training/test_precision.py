"""CPU training precision: bf16 autocast only where the CPU has bf16 instructions."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import vla  # noqa: F401  registers ${vla.cpu_precision:}
from vla.precision import cpu_flags, cpu_has_bf16, cpu_precision

CONFIGS = Path(__file__).resolve().parents[3] / "configs"

EPYC = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n"
OLD_X86 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


@pytest.mark.parametrize(
    ("text", "has"), [(EPYC, True), (OLD_X86, False), (ARM, True), ("", False)]
)
def test_bf16_detection_reads_cpuinfo_flags(text, has):
    assert cpu_has_bf16(text) is has
    assert ("avx2" in cpu_flags(text)) is (text in (EPYC, OLD_X86))


def test_cpu_trainer_config_resolves_to_this_machines_precision():
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["dataset.path=x.zarr"])
    assert cfg.trainer.precision == cpu_precision() in ("bf16-mixed", "32-true")
    assert cpu_precision() == ("bf16-mixed" if cpu_has_bf16() else "32-true")
