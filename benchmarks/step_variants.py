"""Training-step time of config variants, interleaved in one process (a table of medians).

    python benchmarks/step_variants.py base "nofilm:model.vision.film=false"
    python benchmarks/step_variants.py base "compiled:optim.compile=true" --rounds 8

Each argument is ``name`` or ``name:override;override``: one model and optimizer built from the
experiment's config with those overrides (as ``vla-train`` builds them). All variants step on the
same few real batches (the base config's loader, so overrides must keep the batch's shapes), one
round of ``--steps`` steps each in turn, ``--rounds`` times: a machine whose speed drifts (this
project's 2-core VMs drift +-15% within minutes) slows every variant alike, and the table's ratio
to the first variant is what carries over to another machine. A step is what Lightning runs:
zero_grad, forward under the trainer's precision, backward, gradient clipping, AdamW. Compiled
variants are warmed before timing (their compile time is printed). The store must exist.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time

import torch
from rich.console import Console
from rich.table import Table
from train_step import autocast, build  # benchmarks/train_step.py (this folder)


def parse_variant(spec: str) -> tuple[str, list[str]]:
    name, _, overrides = spec.partition(":")
    return name, [o for o in overrides.split(";") if o]


def stepper(cfg, module, batches):
    """One training step as Lightning runs it, on the next of ``batches``."""
    model = module.model.train()
    optimizer = module.configure_optimizers()["optimizer"]
    precision = str(cfg.trainer.precision)
    clip = cfg.trainer.get("gradient_clip_val")

    def step() -> None:
        batch = next(batches)
        optimizer.zero_grad(set_to_none=True)
        with autocast(precision):
            loss = model(batch)["loss"]
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), float(clip))
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("variants", nargs="+", help="name or name:override;override")
    parser.add_argument("--experiment", default="quickstart")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=5, help="steps per variant per round")
    parser.add_argument("--batches", type=int, default=8, help="distinct real batches cycled")
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    from vla.cpu_runtime import retain_freed_memory
    from vla.training.lightning_noise import quiet_lightning

    retain_freed_memory()  # as vla-train does
    quiet_lightning()
    variants = dict(parse_variant(s) for s in args.variants)
    _, data, _ = build(args.experiment, None, workers=0)
    loader = iter(data.train_dataloader())
    batches = [next(loader) for _ in range(args.batches)]
    steps, warm = {}, {}
    for name, overrides in variants.items():
        torch.manual_seed(0)
        cfg, _, module = build(args.experiment, None, workers=0, extra=overrides)
        steps[name] = stepper(cfg, module, itertools.cycle(batches))
        start = time.perf_counter()
        for _ in range(3):  # first steps: allocator warm-up, compile where asked
            steps[name]()
        warm[name] = time.perf_counter() - start
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[name].append((time.perf_counter() - start) / args.steps)
    show(args, variants, times, warm)


def show(args, variants: dict, times: dict, warm: dict) -> None:
    first = statistics.median(next(iter(times.values())))
    table = Table(
        title=f"{args.experiment} training step, {args.rounds} interleaved rounds of "
        f"{args.steps} steps, {torch.get_num_threads()} threads"
    )
    for col in ("variant", "overrides", "median ms", "min-max ms", "speed vs first", "warm-up s"):
        table.add_column(col, justify="left" if col in ("variant", "overrides") else "right")
    for name, ts in times.items():
        med = statistics.median(ts)
        table.add_row(name, " ".join(variants[name]) or "(experiment as is)", f"{med * 1e3:.1f}",
                      f"{min(ts) * 1e3:.0f}-{max(ts) * 1e3:.0f}", f"{first / med:.2f}x",
                      f"{warm[name]:.1f}")  # fmt: skip
    Console(width=130).print(table)


if __name__ == "__main__":
    main()
