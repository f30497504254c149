"""The Meta-World extra's packaging, checked in the core venv (no metaworld needed)."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OWN = {"mujoco", "metaworld"}  # what the metaworld constraints pin differently or add


def _pins(path: Path) -> dict[str, str]:
    lines = (ln.strip() for ln in path.read_text().splitlines())
    pairs = (ln.split("==") for ln in lines if ln and not ln.startswith("#"))
    return {name.lower(): version for name, version in pairs}


def test_metaworld_constraints_agree_with_the_core_pins_except_mujoco():
    core, mw = _pins(ROOT / "constraints.txt"), _pins(ROOT / "constraints-metaworld.txt")
    assert mw["mujoco"].startswith("3.3.") and "metaworld" in mw
    shared = {n for n in core if not n.startswith("mujoco")}
    assert {n: mw.get(n) for n in shared} == {n: core[n] for n in shared}, (
        "constraints-metaworld.txt must repeat constraints.txt's pins (but mujoco's): "
        "update both files together"
    )


def test_making_a_metaworld_env_without_metaworld_says_how_to_install_it(monkeypatch):
    from envs.metaworld_env import MetaWorldEnv

    monkeypatch.setitem(sys.modules, "metaworld", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "metaworld.env_dict", None)
    with pytest.raises(ImportError, match="make metaworld-deps"):
        MetaWorldEnv(tasks="reach-v3")
