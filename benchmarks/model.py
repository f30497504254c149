"""Speed of the default VLA (configs/model/default.yaml): size, inference latency, training rate.

    python benchmarks/model.py [--json out.json] [--device cpu|cuda] [--repeats 30]
                               [--grounding-steps 1000] [--compiled]

Measures, on random inputs shaped like the tabletop env's (64 px RGB, 7-d state, 4-d actions;
2.5 s commands for the speech model):
batch-1 ``predict_actions`` latency (median) in parallel mode and in autoregressive mode with a KV
cache (one 4-d action = 4 tokens, and a whole chunk), batch-32 inference throughput, and batch-32
training throughput (forward + backward + AdamW step), the same step with the encoder in NCHW, under
bf16 autocast (where the CPU has bf16 instructions) with eager and SDPA attention, and
latency / training step of two variants beside the default (one frame, typed command): the
frame-history model (``history=start``: first + current frame) and the speech model
(``model/audio=speech``). Prints one table; ``--json`` writes the same
numbers as one flat object. ``--grounding-steps N`` also trains the default model for N steps on a
synthetic grounding task (three coloured blocks, "touch the <colour> block", target = direction from
the gripper to the named block) in both prompt orders and reports the cosine between predicted and
true direction (a predictor that ignores the image gets the ``state_only`` value). Timings are medians; on a machine shared with other jobs they vary,
so say what else was running.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

# benchmarks/envs.py would shadow the envs package (policies imports it): drop this folder
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(__file__)]

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from policies.vla_policy import compiled_predict  # noqa: E402
from vla import keys  # noqa: E402
from vla.model import VLA  # noqa: E402
from vla.precision import cpu_has_bf16  # noqa: E402
from vla.prompt import PromptInputs  # noqa: E402

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
        **(speech(model, b, g, device) if model.speech is not None else {}),
    }


def speech(model: VLA, b: int, g: torch.Generator, device: str) -> dict:
    """Spoken commands of 2.5 s (the typical synthesized instruction), zero-padded."""
    n = round(2.5 * model.speech.sample_rate)
    audio = (torch.randn(b, n, generator=g) * 0.1).to(device)  # (B, N)
    return {keys.AUDIO: audio, keys.AUDIO_LENGTH: torch.full((b,), n, device=device)}


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


def predict_ms(
    model: VLA,
    b: int,
    repeats: int,
    device: str,
    use_cache: bool = True,
    compile: str | None = None,
) -> float:
    """Median ``predict_actions`` latency; ``compile``: through ``torch.compile`` with that mode,
    exactly as ``VLAPolicy(compile=...)`` runs it (the first calls, which compile, are warm-up)."""
    model.eval()
    x = batch(model, b, device)
    spoken = {"audio": x.get(keys.AUDIO), "audio_length": x.get(keys.AUDIO_LENGTH)}
    predict = compiled_predict(model, compile)
    return median_ms(
        lambda: predict(
            PromptInputs(x[keys.IMAGE], x[keys.INSTRUCTION], x[keys.STATE], **spoken),
            use_cache=use_cache,
        ),
        repeats,
        device,
        warmup=10 if compile else 3,  # compiling calls, then the compiled code's own warm-up
    )


def train_ms(model: VLA, b: int, repeats: int, device: str, bf16: bool = False) -> float:
    """Median AdamW step; ``bf16``: under bf16 autocast (Lightning's ``bf16-mixed``)."""
    model.train()
    x = batch(model, b, device)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            loss = model(x)["loss"]
        loss.backward()
        opt.step()

    return median_ms(step, repeats, device)


BLOCKS = {
    "red": (220, 30, 30),
    "green": (30, 200, 30),
    "blue": (40, 40, 230),
    "yellow": (230, 220, 30),
    "purple": (150, 40, 200),
    "cyan": (30, 210, 210),
}


def grounding_batch(b: int, g: torch.Generator, horizon: int) -> dict:
    """Random 64 px scenes: 3 coloured 8 px blocks, a white gripper dot, gripper xy as state."""
    names = list(BLOCKS)
    img = torch.randint(90, 110, (b, 3, 64, 64), generator=g).to(torch.uint8)  # (B, 3, 64, 64)
    grip = torch.rand(b, 2, generator=g) * 0.8 + 0.1  # (B, 2) in [0.1, 0.9]
    target = torch.zeros(b, 2)  # (B, 2)
    texts = []
    for i in range(b):
        colours, spots = torch.randperm(len(names), generator=g)[:3].tolist(), []
        while len(spots) < 3:  # non-overlapping positions
            p = torch.rand(2, generator=g) * 0.8 + 0.1  # (2,)
            if all((p - q).abs().max() > 0.2 for q in spots):
                spots.append(p)
        for c, (x, y) in zip(colours, (s * 64 for s in spots), strict=True):
            rgb = torch.tensor(BLOCKS[names[c]], dtype=torch.uint8)[:, None, None]  # (3, 1, 1)
            img[i, :, max(int(y) - 4, 0) : int(y) + 4, max(int(x) - 4, 0) : int(x) + 4] = rgb
        gx, gy = (grip[i] * 64).long().tolist()
        img[i, :, max(gy - 2, 0) : gy + 2, max(gx - 2, 0) : gx + 2] = 255
        k = int(torch.randint(0, 3, (1,), generator=g))
        texts.append(f"touch the {names[colours[k]]} block")
        target[i] = spots[k]
    actions = torch.zeros(b, horizon, ACTION_DIM)  # (B, H, 4)
    actions[:, :, :2] = ((target - grip) * 4).clamp(-1, 1)[:, None]  # same step for the chunk
    state = torch.zeros(b, 1, STATE_DIM)  # (B, 1, 7)
    state[:, 0, :2] = grip * 2 - 1
    return {
        keys.IMAGE: img[:, None, None],  # (B, 1, 1, 3, 64, 64)
        keys.STATE: state,
        keys.ACTION: actions,
        keys.ACTION_MASK: torch.ones(b, horizon, dtype=torch.bool),
        keys.INSTRUCTION: texts,
    }


def grounding(order: str, steps: int, device: str) -> tuple[float, float]:
    """Direction cosine on 256 held-out scenes after ``steps`` AdamW steps at batch 32."""
    torch.manual_seed(0)
    model = build([f"model.prompt_order={order}"], device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        b = {
            k: v.to(device) if torch.is_tensor(v) else v
            for k, v in grounding_batch(32, g, 4).items()
        }
        opt.zero_grad(set_to_none=True)
        model.train()(b)["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    val = grounding_batch(256, torch.Generator().manual_seed(99), 4)
    pred = model.eval().predict_actions(
        PromptInputs(val[keys.IMAGE], val[keys.INSTRUCTION], val[keys.STATE])
    )
    true = val[keys.ACTION][:, 0, :2]  # (N, 2)
    cos = F.cosine_similarity(pred[:, 0, :2].cpu(), true).mean()
    blind = F.cosine_similarity(0.5 - (val[keys.STATE][:, 0, :2] + 1) / 2, true).mean()
    return float(cos), float(blind)


def cpu_name() -> str:
    info = Path("/proc/cpuinfo")
    if info.is_file():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results as one flat JSON object")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per measurement")
    parser.add_argument(
        "--grounding-steps", type=int, default=0, help="also run the grounding check (0: skip)"
    )
    parser.add_argument(
        "--compiled",
        action="store_true",
        help="also batch-1 latency through torch.compile (policy.compile=default; on CUDA also "
        "reduce-overhead: CUDA graphs)",
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    dev, n = args.device, args.repeats

    par = build([], dev)
    ar1 = build(["model.decoding=autoregressive", "model.action_horizon=1"], dev)
    ar = build(["model.decoding=autoregressive"], dev)
    x1 = batch(par, 1, dev)
    with torch.no_grad():
        prefix, _ = par.prompt(
            PromptInputs(x1[keys.IMAGE], x1[keys.INSTRUCTION], x1[keys.STATE]), 0
        )
    h = par.action_horizon
    train = train_ms(par, 32, max(n // 3, 5), dev)
    nchw = build(["model.vision.channels_last=false"], dev)  # the encoder's memory layout, A/B
    train_nchw = train_ms(nchw, 32, max(n // 3, 5), dev)
    sdpa = build(["model.llm.config.attn_implementation=sdpa"], dev)  # the LM's attention, A/B
    bf16 = dev == "cuda" or cpu_has_bf16()  # emulated bf16 is ~25x slower: not worth timing
    hist = build(["model.obs_horizon=2", "model.history=start"], dev)  # + the episode's 1st frame
    heard = build(["model/audio=speech"], dev)  # spoken instead of typed instructions
    infer32 = predict_ms(par, 32, max(n // 3, 5), dev)
    res = {
        "device": dev if dev == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
        "hardware": torch.cuda.get_device_name() if dev == "cuda" else cpu_name(),
        "params_total": count(par),
        "params_vision": count(par.obs.vision),
        "params_adapter": count(par.obs.adapter),
        "params_llm": count(par.llm),
        "observation_tokens": par.obs.num_tokens,
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
        "train_ms_per_step_b32_nchw": train_nchw,
        "train_ms_per_step_b32_bf16": train_ms(par, 32, max(n // 3, 5), dev, bf16=True)
        if bf16
        else "n/a (no bf16 instructions)",
        "train_ms_per_step_b32_bf16_sdpa": train_ms(sdpa, 32, max(n // 3, 5), dev, bf16=True)
        if bf16
        else "n/a",
        "latency_ms_parallel_b1_history_start": predict_ms(hist, 1, n, dev),
        "train_ms_per_step_b32_history_start": train_ms(hist, 32, max(n // 3, 5), dev),
        "latency_ms_parallel_b1_audio": predict_ms(heard, 1, n, dev),
        "train_ms_per_step_b32_audio": train_ms(heard, 32, max(n // 3, 5), dev),
        "params_audio": count(heard.speech),
    }
    if args.compiled:
        for mode in ("default", "reduce-overhead") if dev == "cuda" else ("default",):
            torch._dynamo.reset()
            res[f"latency_ms_parallel_b1_compiled_{mode}"] = predict_ms(
                par, 1, n, dev, compile=mode
            )
    if args.grounding_steps:
        res["grounding_steps"] = args.grounding_steps
        for order in ("text_first", "vision_first"):
            cos, blind = grounding(order, args.grounding_steps, dev)
            res[f"grounding_cosine_{order}"] = cos
        res["grounding_cosine_state_only"] = blind
    labels = {
        "latency_ms_autoregressive_b1": (
            f"latency_ms_autoregressive_b1 (1 action = {ar1.num_action_tokens} tokens, KV cache)"
        ),
        "latency_ms_autoregressive_nocache_b1": "  same without KV cache",
        "latency_ms_autoregressive_chunk_b1": f"latency_ms_autoregressive_chunk_b1 ({ar.num_action_tokens} tokens)",
        "latency_ms_parallel_b1": f"latency_ms_parallel_b1 ({par.num_action_tokens} tokens, one forward)",
        "actions_per_s_b32": "actions_per_s_b32 (parallel)",
        "train_ms_per_step_b32_nchw": "  same, encoder in NCHW (model.vision.channels_last=false)",
        "train_ms_per_step_b32_bf16": "  same, bf16 autocast (trainer.precision=bf16-mixed)",
        "train_ms_per_step_b32_bf16_sdpa": "  same, bf16, LM attention SDPA instead of eager",
        "latency_ms_parallel_b1_history_start": (
            "latency_ms_parallel_b1_history_start (2 frames: first + current)"
        ),
        "train_ms_per_step_b32_history_start": "train_ms_per_step_b32_history_start",
        "latency_ms_parallel_b1_audio": "latency_ms_parallel_b1_audio (2.5 s spoken command)",
        "params_audio": "params_audio (encoder + adapter)",
        "latency_ms_parallel_b1_compiled_default": "latency_ms_parallel_b1, torch.compile",
        "latency_ms_parallel_b1_compiled_reduce-overhead": (
            "latency_ms_parallel_b1, torch.compile reduce-overhead (CUDA graphs)"
        ),
    }
    table = Table(title="VLA model benchmark (configs/model/default.yaml)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in res.items():
        text = (
            f"{value:,.2f}"
            if isinstance(value, float) and key.startswith("grounding")
            else f"{value:,.1f}"
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
