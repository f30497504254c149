"""Tiny real VLAs for the policy tests: the tabletop's 4-d actions and 7-d state, 32 px frames."""

import importlib.util
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

from vla.action_tokenizer import ActionTokenizer
from vla.adapters import MLP, AttentionPool
from vla.audio import AudioEncoder
from vla.causal_lm import CausalLM
from vla.model import VLA
from vla.text import ByteTokenizer
from vla.vision import TimmEncoder

LM = {"model_type": "llama", "hidden_size": 32, "intermediate_size": 64,
      "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2,
      "max_position_embeddings": 128, "bos_token_id": None, "eos_token_id": None,
      "pad_token_id": None}  # fmt: skip


def make_tiny_vla(
    num_cameras: int = 1,
    obs_horizon: int = 1,
    history: str = "recent",
    state: bool = False,
    action_horizon: int = 1,
    action_dim: int = 4,
    n_bins: int = 8,
    speech: bool = False,
    seed: int | None = None,
    film: bool = False,
    film_pooling: str = "mean",
    image_size: int = 32,
    goal_loss: float = 0.0,
) -> VLA:
    """A VLA of a 2-stage narrow ResNet and a 1-layer llama; ``speech``: an audio-only model
    (``instruction="audio"``) with a 1-layer speech encoder at 16 kHz; ``film``: the ResNet
    conditioned on the instruction (pooled by ``film_pooling``); images of ``image_size`` pixels;
    ``goal_loss`` > 0 (needs ``state``): a goal head."""
    if seed is not None:
        torch.manual_seed(seed)
    ears: dict[str, Any] = {}
    if speech:
        encoder = AudioEncoder(16000, max_seconds=4.0, n_mels=16, width=16, depth=1, heads=2)
        ears = {"instruction": "audio", "audio_encoder": encoder,
                "audio_adapter": partial(AttentionPool, num_queries=2, num_heads=2)}  # fmt: skip
    return VLA(
        vision=TimmEncoder("resnet10t", image_size=image_size, feature_stage=3,
                           model_kwargs={"channels": [8, 8, 8, 8], "stem_width": 8}, film=film),
        adapter=MLP, llm=CausalLM(config=LM), text_tokenizer=ByteTokenizer(),
        action_tokenizer=ActionTokenizer(low=[-1.0] * action_dim, high=[1.0] * action_dim,
                                         n_bins=n_bins),
        action_horizon=action_horizon, num_cameras=num_cameras, obs_horizon=obs_horizon,
        history=history, state_low=[-1.0] * 7 if state else None,
        state_high=[1.0] * 7 if state else None, film_pooling=film_pooling,
        goal_loss=goal_loss, **ears,
    ).eval()  # fmt: skip


@pytest.fixture
def tiny_vla() -> Callable[..., VLA]:
    """``tiny_vla(num_cameras=1, obs_horizon=1, history="recent", state=False, ...)``."""
    return make_tiny_vla


BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_benchmark(name: str) -> ModuleType:
    """The script ``benchmarks/<name>.py`` imported as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def benchmark_module() -> Callable[[str], ModuleType]:
    """``benchmark_module("split_shifts")``: a benchmarks/ script's functions, to test them."""
    return load_benchmark
