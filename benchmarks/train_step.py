"""Where a training step's time goes, beside this CPU's measured peaks (a roofline table).

    python benchmarks/train_step.py [--experiment quickstart] [--store PATH] [--repeats 15]
                                    [--json out.json] [--skip-trainer] [override ...]
    python benchmarks/train_step.py optim.compile=true     # any vla-train override
    python benchmarks/train_step.py trainer=gpu            # the same profile on a GPU (CUDA)

Builds the experiment's real model and data module exactly as ``vla-train`` does (the store
must exist: ``make quickstart`` collects the quickstart's), then measures, each as a median:

* peaks: fp32 / bf16 matmul (1024^3 on a CPU, 8192^3 on a GPU) and a 3x3 convolution (64
  channels, 32x32, batch 128, channels_last) in GFLOP/s — what the device can do at these shapes;
* the parts of one step on a real batch, under the trainer's precision: image encoder forward +
  backward (alone, eager), observation encoder forward + backward (FiLM head, image encoder,
  adapter: compiled as one graph under ``optim.compile_vision``), LM forward + backward (on the
  inputs they get in the real step, captured by forward hooks), AdamW step; the whole step
  (forward, backward, clip, optimizer), and the rest (prompt, embeddings, loss, autocast casts,
  Python) as the difference from the last three;
* FLOPs of each part (``torch.utils.flop_counter``) and the GFLOP/s each achieves;
* data: a batch from the loader in the main process (``num_workers=0``) and with the configured
  workers, loader alone;
* the trainer: steps/s of ``lightning.Trainer.fit`` with the experiment's trainer config
  (validation, checkpoints, logging; rollouts off), the number a user sees.

The device follows the trainer config: ``trainer=gpu`` (``accelerator: gpu``) runs the parts on
CUDA under CUDA autocast, synchronizing before each clock read. Timings are medians; say what else
ran on the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from lightning.fabric.utilities.apply_func import move_data_to_device
from rich.console import Console
from rich.table import Table
from torch.utils.flop_counter import FlopCounterMode

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def sync() -> None:
    """Wait for queued GPU work, so that a clock read covers it (nothing to wait for on a CPU)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def median_s(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def flops_of(fn: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def peaks(repeats: int, device: str = "cpu") -> dict[str, float]:
    """GFLOP/s of a big matmul and a 3x3 conv, fp32 and bf16."""
    out = {}
    n = 8192 if device == "cuda" else 1024
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a = torch.randn(n, n, dtype=dtype, device=device)
        b = torch.randn(n, n, dtype=dtype, device=device)
        out[f"matmul_{name}"] = 2 * n**3 / median_s(lambda a=a, b=b: a @ b, repeats) / 1e9
        x = torch.randn(128, 64, 32, 32, dtype=dtype, device=device)
        x = x.to(memory_format=torch.channels_last)
        conv = torch.nn.Conv2d(64, 64, 3, padding=1, bias=False).to(device, dtype)
        conv = conv.to(memory_format=torch.channels_last)
        flops = 2 * 128 * 64 * 32 * 32 * 64 * 9
        with torch.no_grad():
            out[f"conv3x3_{name}"] = flops / median_s(lambda x=x, c=conv: c(x), repeats) / 1e9
    return out


def build(experiment: str, store: str | None, workers: int | None, extra: Sequence[str] = ()):
    from vla.training.build import build_training

    overrides = [f"experiment={experiment}", "callbacks.rollout=null", *extra]
    if store:
        overrides.append(f"dataset.path={store}")
    if workers is not None:
        overrides.append(f"dataset.num_workers={workers}")
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides)
    if not Path(cfg.dataset.path).exists():
        raise SystemExit(
            f"no store at {cfg.dataset.path}: collect it first (make quickstart does) or --store"
        )
    setup = build_training(cfg)
    data, module = setup.data, setup.module
    data.setup("fit")
    return cfg, data, module


def autocast(precision: str, device: str = "cpu"):
    if precision.startswith("bf16"):
        return torch.autocast(device, dtype=torch.bfloat16)
    return contextlib.nullcontext()


class Capture:
    """Inputs a submodule receives in the real forward (kept detached, for micro-benchmarks)."""

    def __init__(self, module: torch.nn.Module):
        self.args: tuple = ()
        self.handle = module.register_forward_hook(self.hook)

    def hook(self, module, args, output) -> None:
        self.args = tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args)
        self.handle.remove()


def fwd_bwd(module: torch.nn.Module, args: tuple, ctx) -> Callable[[], None]:
    def run() -> None:
        with ctx():
            out = module(*args)
            out = out[0] if isinstance(out, tuple) else out
        out.float().square().mean().backward()

    return run


def trainer_steps_per_s(cfg, steps: int) -> float:
    """steps/s of Lightning's fit with the experiment's trainer (rollouts off), after warmup."""
    import lightning as L
    from hydra.utils import instantiate

    from vla.training.build import build_training

    class Clock(L.Callback):
        def __init__(self):
            self.times: list[float] = []

        def on_train_batch_end(self, *args) -> None:
            self.times.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as out:
        cfg.out = out
        cfg.trainer.max_steps = steps
        setup = build_training(cfg)
        data, module = setup.data, setup.module
        clock = Clock()
        trainer = instantiate(
            cfg.trainer, callbacks=[clock], enable_progress_bar=False, enable_model_summary=False
        )
        trainer.fit(module, datamodule=data)
    t = clock.times[steps // 5 :]  # skip worker start-up and the first steps
    return (len(t) - 1) / (t[-1] - t[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiment", default="quickstart")
    parser.add_argument("--store", default=None, help="dataset.path (default: the experiment's)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--trainer-steps", type=int, default=150)
    parser.add_argument("--skip-trainer", action="store_true")
    parser.add_argument("--json", default=None)
    parser.add_argument(
        "overrides", nargs="*", help="config overrides, as for vla-train (optim.compile=true)"
    )
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    from vla.cpu_runtime import retain_freed_memory
    from vla.training.lightning_noise import quiet_lightning

    retain_freed_memory()  # as vla-train does
    quiet_lightning()
    torch.manual_seed(0)

    extra = list(args.overrides)
    cfg, data, module = build(args.experiment, args.store, workers=0, extra=extra)
    precision = str(cfg.trainer.precision)
    device = "cuda" if cfg.trainer.accelerator in ("gpu", "cuda") else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("trainer.accelerator is gpu but torch sees no CUDA device")
    model = module.model.to(device).train()
    loader = iter(data.train_dataloader())
    batch = move_data_to_device(next(loader), device)
    ctx = lambda: autocast(precision, device)  # noqa: E731
    vision, obs, llm = Capture(model.obs.vision), Capture(model.obs), Capture(model.llm)
    with ctx():
        model(batch)["loss"].backward()  # one real step fills the captures
    optimizer = module.configure_optimizers()["optimizer"]

    def whole_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with ctx():
            loss = model(batch)["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    def forward_backward() -> None:
        with ctx():
            loss = model(batch)["loss"]
        loss.backward()

    parts = {
        # the image encoder alone, eager (under optim.compile_vision it runs compiled inside the
        # observation encoder's graph, the next part)
        "image encoder fwd+bwd": fwd_bwd(model.obs.vision, vision.args, ctx),
        # what optim.compile_vision compiles: the FiLM head, the image encoder and the adapter
        "observation encoder fwd+bwd": fwd_bwd(model.obs, obs.args, ctx),
        "LM fwd+bwd": fwd_bwd(model.llm, llm.args, ctx),
        "AdamW step": optimizer.step,
        "whole step": whole_step,
    }
    times = {name: median_s(fn, args.repeats) for name, fn in parts.items()}
    flops = {name: flops_of(fn) for name, fn in parts.items() if name != "AdamW step"}
    model.zero_grad(set_to_none=True)
    times["data (main process)"] = median_s(lambda: next(loader), args.repeats)
    if device == "cuda":  # the host-to-device copy of one batch (not pinned), as Lightning does it
        host = next(loader)
        times["batch to GPU"] = median_s(lambda: move_data_to_device(host, device), args.repeats)
    workers = int(compose_workers(args.experiment, extra))
    _, wdata, _ = build(args.experiment, args.store, workers=workers, extra=extra)
    wloader = iter(wdata.train_dataloader())
    times[f"data ({workers} workers, alone)"] = median_s(lambda: next(wloader), args.repeats * 3)
    step_parts = ("observation encoder fwd+bwd", "LM fwd+bwd", "AdamW step")  # disjoint parts
    rest = times["whole step"] - sum(times[k] for k in step_parts)
    peak = peaks(args.repeats, device)
    result = {
        "experiment": args.experiment,
        "device": torch.cuda.get_device_name() if device == "cuda" else f"cpu ({os.cpu_count()})",
        "precision": precision,
        "batch_size": int(cfg.dataset.batch_size),
        "sequence_length": int(llm.args[0].shape[1]),
        "images_per_step": int(vision.args[0].shape[0]),
        **{f"ms/{k}": v * 1e3 for k, v in times.items()},
        "ms/rest (prompt, embeddings, loss, casts, Python)": rest * 1e3,
        **{f"gflops/{k}": v / 1e9 for k, v in flops.items()},
        **{f"peak_gflops_per_s/{k}": v for k, v in peak.items()},
    }
    if not args.skip_trainer:
        _, tdata, _ = build(args.experiment, args.store, None, extra)  # warm store caches
        del tdata
        with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
            tcfg = compose("train", [f"experiment={args.experiment}", "callbacks.rollout=null"]
                           + ([f"dataset.path={args.store}"] if args.store else []) + extra)  # fmt: skip
        result["trainer_steps_per_s"] = trainer_steps_per_s(tcfg, args.trainer_steps)
    show(result, times, flops, peak)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


def compose_workers(experiment: str, extra: Sequence[str]) -> int:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("train", [f"experiment={experiment}", *extra]).dataset.num_workers


def show(result: dict, times: dict, flops: dict, peak: dict) -> None:
    table = Table(
        title=f"{result['experiment']} training step: batch {result['batch_size']}, "
        f"{result['images_per_step']} images, {result['sequence_length']} LM tokens, "
        f"{result['precision']}, {result['device']}"
    )
    for col in ("part", "ms", "share of step", "GFLOP", "GFLOP/s"):
        table.add_column(col, justify="left" if col == "part" else "right")
    step = times["whole step"]
    rows = [*times.items(), ("rest (prompt, embed, loss, casts, Python)", result[
        "ms/rest (prompt, embeddings, loss, casts, Python)"] / 1e3)]  # fmt: skip
    for name, t in rows:
        g = flops.get(name)
        share = (
            "" if "data" in name or name in ("whole step", "batch to GPU") else f"{t / step:.0%}"
        )
        table.add_row(name, f"{t * 1e3:.1f}", share, f"{g / 1e9:.2f}" if g else "",
                      f"{g / t / 1e9:.0f}" if g else "")  # fmt: skip
    if "trainer_steps_per_s" in result:
        sps = result["trainer_steps_per_s"]
        table.add_row("Lightning fit (what vla-train runs)", f"{1e3 / sps:.1f}", "", "",
                      f"{sps:.2f} steps/s")  # fmt: skip
    for name, value in peak.items():
        table.add_row(f"peak: {name}", "", "", "", f"{value:.0f}")
    Console(width=110).print(table)


if __name__ == "__main__":
    main()
