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
