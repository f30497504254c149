"""benchmarks/first_move.py on tiny checkpoints: every row prints; the FiLM path can be given
another text than the LM's."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from policies.vla_policy import VLAPolicy
from vla.checkpoint import save_checkpoint

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "first_move.py"
INFO = {"image_keys": ["image"], "env_spec": {"env_id": "vla/MultiTask-v0",
        "cameras": ["front"], "image_size": [32, 32]}}  # fmt: skip


def run(ckpt: Path, *extra: str) -> str:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(ckpt), "--task", "pick_place", "--episodes", "3",
         *extra],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_first_move_prints_the_mixed_rows_only_for_a_film_encoder(tmp_path, tiny_vla):
    save_checkpoint(tiny_vla(seed=0, film=True), tmp_path / "film", extra=INFO)
    save_checkpoint(tiny_vla(seed=0), tmp_path / "plain", extra=INFO)
    film = run(tmp_path / "film", "--rollouts", "2", "--n-action-steps", "1")
    plain = run(tmp_path / "plain")
    first, episodes = film.split("(train split), 2 episodes")
    assert first.count("short") == 4 and "no FiLM encoder" not in first  # 2 mixed rows + 1 both
    assert "bowl destinations" in first and "pad destinations" in first  # seeds 1000150-2: both
    # whole episodes: (LM, FiLM) = env / env, env / short, short / short, neutral / short,
    # short / neutral
    assert episodes.count("neutral") == 2 and episodes.count("short") == 5
    assert "bowl destinations" in episodes and "(1)" in episodes  # seeds 1000150-1: one of each
    rollouts_only = run(tmp_path / "plain", "--episodes", "0", "--rollouts", "1", "--split", "test")
    assert "first action" not in rollouts_only and "(test split), 1 episodes" in rollouts_only
    assert "neutral" not in rollouts_only  # no FiLM: only the rows reading one text in both
    assert plain.count("short") == 2 and "no FiLM encoder" in plain
    assert "episodes" not in plain  # no --rollouts: none run


def test_film_text_conditions_the_image_encoder_alone(tiny_vla, benchmark_module):
    bench = benchmark_module("first_move")
    model = tiny_vla(seed=0, film=True)
    with torch.no_grad():  # as after training: the FiLM map is no longer zero
        torch.nn.init.normal_(model.obs.film[-1].weight)
    policy = VLAPolicy(model, image_keys=("image",))
    film = bench.FilmText(policy)
    obs = {"image": np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8),
           "instruction": "touch the red cube"}  # fmt: skip
    with torch.no_grad():
        own = model.prompt.obs.film_condition(*model.prompt.embed_text(["touch the red cube"]))
        film.text = "lift the blue ball"
        other = model.prompt.obs.film_condition(*model.prompt.embed_text(["touch the red cube"]))
        film.text = None
        back = model.prompt.obs.film_condition(*model.prompt.embed_text(["touch the red cube"]))
    assert not torch.allclose(own, other) and torch.equal(own, back)
    policy.reset()
    assert policy.act(obs).shape == (4,)
