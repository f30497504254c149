"""benchmarks/split_shifts.py's failure kinds: what a failed touch hit instead of the target."""


def test_a_failure_is_named_by_the_first_wrong_object_touched(benchmark_module):
    outcome = benchmark_module("split_shifts").outcome
    assert outcome("red cube", []) == "no touch"
    assert outcome("red cube", ["red cube"]) == "no touch"  # only the target: not a wrong touch
    assert outcome("red cube", ["red sphere"]) == "same colour"
    assert outcome("red cube", ["blue cube"]) == "same shape"
    assert outcome("red cube", ["blue cylinder", "red sphere"]) == "neither"  # the first counts
    assert outcome("red cube", ["red cube", "blue cube"]) == "same shape"


def test_wordings_need_a_target_slot(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "split_shifts.py"
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path), "--wordings", "poke it"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and "has no {obj} slot" in done.stderr


def test_by_target_cells_force_each_pair_of_the_split(benchmark_module):
    from envs.palette import combos

    cells = benchmark_module("split_shifts").split_cells
    held_out = cells(None, "test")
    assert [c[3] for c in held_out] == combos("test") and len(held_out) == 6
    assert all(c[0] == "test" and c[2] is None for c in held_out)  # the env's own sentence
    told = cells(["touch the {obj}", "poke the {obj}"], "train")
    assert len(told) == 2 * len(combos("train")) and told[1][1:3] == (
        "poke the {obj}",
        ["poke the {obj}"],
    )
    assert [c[3] for c in cells(None, None)] == [None] * 4  # the default crossing: 2 x 2
    assert len(cells(["touch the {obj}"], None)) == 2


def test_a_forced_target_runs_every_scene_of_its_cell(benchmark_module, tiny_vla):
    import pytest

    from policies.vla_policy import VLAPolicy

    bench = benchmark_module("split_shifts")
    model = tiny_vla(seed=0, num_cameras=2, film=True, image_size=64)
    policy = VLAPolicy(model, image_keys=("image", "image_top"))
    counts = bench.run_cell(policy, "test", ["touch the {obj}"], 2, 0, ("red", "cube"))
    assert sum(counts.values()) == 2 and set(counts) == set(bench.OUTCOMES)
    with pytest.raises(ValueError, match="not a 'test'-split target"):  # the env got the target
        bench.run_cell(policy, "test", None, 1, 0, ("red", "sphere"))
