"""Speed of the default VLA (configs/model/default.yaml): size, inference latency, training rate.

    python benchmarks/model.py [--json out.json] [--device cpu|cuda] [--repeats 30]

Measures, on random inputs shaped like the tabletop env's (64 px RGB, 7-d state, 4-d actions):
batch-1 ``predict_actions`` latency (median) in parallel mode and in autoregressive mode with a KV
cache (one 4-d action = 4 tokens, and a whole chunk), batch-32 inference throughput, and batch-32
training throughput (forward + backward + AdamW step). Prints one table; ``--json`` writes the same
numbers as one flat object.
"""

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from rich.console import Console
from rich.table import Table

from vla import keys
from vla.model import VLA

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
ACTION_DIM, STATE_DIM = 4, 7
COLORS = ["red", "green", "blue", "yellow", "purple", "orange"]
SHAPES = ["cube", "ball", "cylinder"]
INSTRUCTIONS = [f"{v} the {c} {s}" for v in ("touch", "reach") for c in COLORS for s in SHAPES]


def build(overrides: list[str], device: str) -> VLA:
    stats = [
        f"model.action_tokenizer.low={[-1.0] * ACTION_DIM}",
        f"model.action_tokenizer.high={[1.0] * ACTION_DIM}",
        f"model.state_low={[-1.0] * STATE_DIM}",
        f"model.state_high={[1.0] * STATE_DIM}",
    ]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base=None):
        cfg = compose(overrides=["+model=default", *stats, *overrides])
    model = instantiate(cfg.model)
    model.text_tokenizer.fit(INSTRUCTIONS)
    return model.to(device)


def batch(model: VLA, b: int, device: str) -> dict:
    g = torch.Generator().manual_seed(0)
    size = model.obs.vision.image_size
    t, v = model.obs.obs_horizon, model.obs.num_cameras
    return {
        keys.IMAGE: torch.randint(
            0, 256, (b, t, v, 3, size, size), generator=g, dtype=torch.uint8
        ).to(device),
        keys.STATE: torch.rand(b, t, STATE_DIM, generator=g).to(device) * 2 - 1,
        keys.ACTION: torch.rand(b, model.action_horizon, ACTION_DIM, generator=g).to(device) * 2
        - 1,
        keys.ACTION_MASK: torch.ones(b, model.action_horizon, dtype=torch.bool, device=device),
        keys.INSTRUCTION: [INSTRUCTIONS[i % len(INSTRUCTIONS)] for i in range(b)],
    }


def median_ms(fn: Callable[[], object], repeats: int, device: str, warmup: int = 3) -> float:
    times = []
    for i in range(warmup + repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def predict_ms(model: VLA, b: int, repeats: int, device: str, use_cache: bool = True) -> float:
    model.eval()
    x = batch(model, b, device)
    return median_ms(
        lambda: model.predict_actions(
            x[keys.IMAGE], x[keys.INSTRUCTION], x[keys.STATE], use_cache=use_cache
        ),
        repeats,
        device,
    )


def train_ms(model: VLA, b: int, repeats: int, device: str) -> float:
    model.train()
    x = batch(model, b, device)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        model(x)["loss"].backward()
        opt.step()

    return median_ms(step, repeats, device)


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results as one flat JSON object")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per measurement")
    args = parser.parse_args()
    torch.manual_seed(0)
    dev, n = args.device, args.repeats

    par = build([], dev)
    ar1 = build(["model.decoding=autoregressive", "model.action_horizon=1"], dev)
    ar = build(["model.decoding=autoregressive"], dev)
    x1 = batch(par, 1, dev)
    with torch.no_grad():
        prefix, _ = par.embed_prompt(x1[keys.IMAGE], x1[keys.INSTRUCTION], x1[keys.STATE], 0)
    h = par.action_horizon
    train = train_ms(par, 32, max(n // 3, 5), dev)
    infer32 = predict_ms(par, 32, max(n // 3, 5), dev)
    res = {
        "device": dev if dev == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
        "hardware": torch.cuda.get_device_name()
        if dev == "cuda"
        else platform.processor() or platform.machine(),
        "params_total": count(par),
        "params_vision": count(par.obs.vision),
        "params_adapter": count(par.obs.adapter),
        "params_llm": count(par.llm),
        "image_tokens": par.obs.num_tokens,
        "prompt_tokens_b1": prefix.shape[1],
        "action_horizon": h,
        "action_tokens": par.num_action_tokens,
        "latency_ms_parallel_b1": predict_ms(par, 1, n, dev),
        "latency_ms_autoregressive_b1": predict_ms(ar1, 1, n, dev),
        "latency_ms_autoregressive_nocache_b1": predict_ms(ar1, 1, n, dev, use_cache=False),
        "latency_ms_autoregressive_chunk_b1": predict_ms(ar, 1, n, dev),
        "latency_ms_parallel_b32": infer32,
        "actions_per_s_b32": 32 * h / (infer32 / 1000),
        "train_ms_per_step_b32": train,
        "train_samples_per_s_b32": 32 / (train / 1000),
    }
    labels = {
        "latency_ms_autoregressive_b1": "latency_ms_autoregressive_b1 (1 action = 4 tokens, KV cache)",
        "latency_ms_autoregressive_nocache_b1": "  same without KV cache",
        "latency_ms_autoregressive_chunk_b1": f"latency_ms_autoregressive_chunk_b1 ({h * 4} tokens)",
        "latency_ms_parallel_b1": f"latency_ms_parallel_b1 ({h * 4} tokens, one forward)",
        "actions_per_s_b32": "actions_per_s_b32 (parallel)",
    }
    table = Table(title="VLA model benchmark (configs/model/default.yaml)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in res.items():
        text = (
            f"{value:,.1f}"
            if isinstance(value, float)
            else f"{value:,}"
            if isinstance(value, int)
            else str(value)
        )
        table.add_row(labels.get(key, key), text)
    Console().print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
