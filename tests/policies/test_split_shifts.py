"""benchmarks/split_shifts.py's failure kinds: what a failed touch hit instead of the target."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "split_shifts.py"


def load():
    spec = importlib.util.spec_from_file_location("split_shifts", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_failure_is_named_by_the_first_wrong_object_touched():
    outcome = load().outcome
    assert outcome("red cube", []) == "no touch"
    assert outcome("red cube", ["red cube"]) == "no touch"  # only the target: not a wrong touch
    assert outcome("red cube", ["red sphere"]) == "same colour"
    assert outcome("red cube", ["blue cube"]) == "same shape"
    assert outcome("red cube", ["blue cylinder", "red sphere"]) == "neither"  # the first counts
    assert outcome("red cube", ["red cube", "blue cube"]) == "same shape"
