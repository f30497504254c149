"""Tiny, fast model parts for the VLA tests (CPU, offline, seconds), served as fixtures."""

from collections.abc import Callable
from typing import Any

import pytest
import torch

from vla import keys
from vla.action_tokenizer import ActionTokenizer
from vla.adapters import MLP
from vla.causal_lm import CausalLM
from vla.model import VLA
from vla.text import ByteTokenizer
from vla.vision import TimmEncoder

IMAGE_SIZE = 32
STATE_DIM = 3
ACTION_DIM = 2

LLM_CONFIGS: dict[str, dict[str, Any]] = {
    "llama": {
        "model_type": "llama",
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "max_position_embeddings": 128,
        "bos_token_id": None,
        "eos_token_id": None,
        "pad_token_id": None,
    },
    "gpt2": {
        "model_type": "gpt2",
        "n_embd": 32,
        "n_layer": 2,
        "n_head": 2,
        "n_positions": 128,
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "bos_token_id": None,
        "eos_token_id": None,
    },
}


def tiny_vision(film: bool = False) -> TimmEncoder:
    """A 2-stage narrow ResNet: 32 px -> 2 x 2 = 4 patch tokens of width 16."""
    return TimmEncoder(
        "resnet10t",
        image_size=IMAGE_SIZE,
        feature_stage=3,
        model_kwargs={"channels": [8, 16, 16, 16], "stem_width": 8},
        film=film,
    )


def tiny_vla(
    llm: str = "llama",
    adapter: Callable[..., Any] = MLP,
    decoding: str = "parallel",
    action_horizon: int = 2,
    obs_horizon: int = 1,
    num_cameras: int = 1,
    state: bool = True,
    n_bins: int = 16,
    text_tokenizer: Any = None,
    seed: int = 0,
    film: bool = False,
    vision: Callable[[], Any] | None = None,
    **kwargs: Any,
) -> VLA:
    torch.manual_seed(seed)
    return VLA(
        vision=tiny_vision(film) if vision is None else vision(),
        adapter=adapter,
        llm=CausalLM(config=LLM_CONFIGS[llm]),
        text_tokenizer=text_tokenizer or ByteTokenizer(),
        action_tokenizer=ActionTokenizer(
            low=[-1.0] * ACTION_DIM, high=[2.0] * ACTION_DIM, n_bins=n_bins
        ),
        action_horizon=action_horizon,
        obs_horizon=obs_horizon,
        num_cameras=num_cameras,
        state_low=[0.0] * STATE_DIM if state else None,
        state_high=[1.0] * STATE_DIM if state else None,
        decoding=decoding,
        **kwargs,
    )


def make_batch(model: VLA, b: int = 3, seed: int = 0) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed)
    t, v = model.obs.obs_horizon, model.obs.num_cameras
    size = model.obs.vision.image_size
    h = model.action_horizon
    words = ["touch the red cube", "go", "reach the blue ball please", "", "left"]
    batch = {
        keys.IMAGE: torch.randint(0, 256, (b, t, v, 3, size, size), generator=g, dtype=torch.uint8),
        keys.ACTION: torch.rand(b, h, ACTION_DIM, generator=g) * 3 - 1,  # within [-1, 2]
        keys.ACTION_MASK: torch.ones(b, h, dtype=torch.bool),
        keys.INSTRUCTION: [words[i % len(words)] for i in range(b)],
    }
    if model.obs.state_dim:
        batch[keys.STATE] = torch.rand(b, t, STATE_DIM, generator=g)
        batch[keys.GOAL] = torch.rand(b, STATE_DIM, generator=g)  # where each episode ended
    return batch


# pytest imports test modules without putting this folder on sys.path (importlib mode), so the
# helpers reach the tests as fixtures
@pytest.fixture
def vla_factory() -> Callable[..., VLA]:
    """``vla_factory(llm="gpt2", adapter=..., decoding=...)`` builds a tiny VLA."""
    return tiny_vla


@pytest.fixture
def batch_factory() -> Callable[..., dict[str, Any]]:
    """``batch_factory(model, b=3, seed=0)`` makes a random batch that fits ``model``."""
    return make_batch


@pytest.fixture
def llm_configs() -> dict[str, dict[str, Any]]:
    return {k: dict(v) for k, v in LLM_CONFIGS.items()}


@pytest.fixture
def single_thread():
    """Tiny models run fastest on one thread, and don't stall when other jobs share the CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
