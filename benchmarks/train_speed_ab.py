"""Training speed of this checkout beside another revision's, measured side by side.

    python benchmarks/train_speed_ab.py --base a892e0a                  # quickstart, 3 rounds
    python benchmarks/train_speed_ab.py --base HEAD~3 --steps 400 --rounds 2 optim.compile=true

Runs ``vla.cli.train.train`` (everything ``vla-train`` does: validation, checkpoints, logging;
rollouts off) from a clean export of ``--base`` (``git archive``) and from this working tree,
alternating base / this for ``--rounds`` rounds so that both see the same machine load. Each run
reports steps/s from the fifth of the steps onward (past worker start-up and any compile) and the
whole call's wall clock. Overrides after the options go to this tree's runs only (new options the
base may not have). The experiment's store must exist (``make quickstart`` collects it).
Medians are printed; say what else ran on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]

# one run, executed in a fresh interpreter whose sys.path starts at the tree under test
RUN = r"""
import json, sys, tempfile, time
tree, experiment, steps, overrides = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
sys.path.insert(0, tree)
import lightning as L
from hydra import compose, initialize_config_dir
import vla
from vla.cli.train import train
assert vla.__file__.startswith(tree), (vla.__file__, tree)

class Clock(L.Callback):
    def __init__(self):
        self.times = []
    def on_train_batch_end(self, *args):
        self.times.append(time.perf_counter())

with tempfile.TemporaryDirectory() as out:
    with initialize_config_dir(config_dir=f"{tree}/configs", version_base="1.3"):
        cfg = compose("train", [f"experiment={experiment}", "callbacks.rollout=null",
                                f"trainer.max_steps={steps}", f"out={out}", *overrides])
    clock, start = Clock(), time.perf_counter()
    train(cfg, extra_callbacks=[clock])
    wall = time.perf_counter() - start
t = clock.times[steps // 5:]
print("RESULT " + json.dumps({"steps_per_s": (len(t) - 1) / (t[-1] - t[0]), "wall_s": wall}))
"""


def export(revision: str, folder: Path) -> Path:
    """The files of ``revision`` (no .git, nothing untracked) under ``folder``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", revision],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def run(tree: Path, experiment: str, steps: int, store: Path, overrides: list[str]) -> dict:
    args = [str(tree), experiment, str(steps), f"dataset.path={store}", *overrides]
    env = {**os.environ, "PYTHONPATH": str(tree), "VLA_PROGRESS_INTERVAL": "600"}
    proc = subprocess.run(
        [sys.executable, "-c", RUN, *args], cwd=tree, env=env, capture_output=True, text=True
    )
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise SystemExit(f"run in {tree} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--experiment", default="quickstart")
    parser.add_argument("--store", default=None, help="dataset.path (default: the experiment's)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default=None)
    parser.add_argument("overrides", nargs="*", help="vla-train overrides for this tree's runs")
    args = parser.parse_args()
    store = Path(args.store or ROOT / "runs/quickstart/data/touch_front_top.zarr").resolve()
    if not store.exists():
        raise SystemExit(f"no store at {store}: collect it first (make quickstart does) or --store")
    results: dict[str, list[dict]] = {"base": [], "this": []}
    with tempfile.TemporaryDirectory(prefix="vla-ab-") as tmp:
        base = export(args.base, Path(tmp))
        for r in range(args.rounds):
            for name, tree, extra in (("base", base, []), ("this", ROOT, args.overrides)):
                results[name].append(run(tree, args.experiment, args.steps, store, extra))
                print(f"round {r + 1}/{args.rounds} {name}: {results[name][-1]}", flush=True)
    med = {
        name: {k: statistics.median(x[k] for x in rs) for k in ("steps_per_s", "wall_s")}
        for name, rs in results.items()
    }
    table = Table(
        title=f"{args.experiment}: {args.steps} steps, {args.rounds} alternating rounds, "
        f"{os.cpu_count()} CPU threads"
    )
    for col in ("code", "steps/s (median)", "runs", f"wall s for {args.steps} steps"):
        table.add_column(col, justify="left" if col == "code" else "right")
    for name, label in (("base", args.base), ("this", f"this tree {' '.join(args.overrides)}")):
        runs = ", ".join(f"{x['steps_per_s']:.2f}" for x in results[name])
        table.add_row(label, f"{med[name]['steps_per_s']:.2f}", runs, f"{med[name]['wall_s']:.0f}")
    ratio = med["this"]["steps_per_s"] / med["base"]["steps_per_s"]
    table.add_row("ratio", f"{ratio:.2f}x", "", "")
    Console(width=120).print(table)
    if args.json:
        payload = {
            "base": args.base,
            "overrides": args.overrides,
            "results": results,
            "ratio": ratio,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
