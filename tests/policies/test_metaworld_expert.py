"""Meta-World end to end: its scripted policies behind the Policy protocol, vla-collect with
them, vla-train on the store with overrides only (4-d state, two named cameras), and vla-eval of
the checkpoint with a fixed number of episodes per task, and benchmarks/state_shortcut.py on it.

Runs in the metaworld venv (``make metaworld-deps``; ``make test`` runs it there); in the core
venv it is skipped, saying so.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vla.data import EpisodeStore

pytest.importorskip("metaworld", reason="Meta-World is an extra: make metaworld-deps (own venv)")

from envs import keys  # noqa: E402
from envs.metaworld_env import MT10, MetaWorldEnv  # noqa: E402
from policies.metaworld_expert import MetaWorldExpert  # noqa: E402
from policies.rollout import run_episode  # noqa: E402

SIZE = 32
ENV = [
    "dataset=metaworld_mt10_wrist",
    f"env.image_size={SIZE}",
    "env.tasks=[reach-v3,door-open-v3]",
]
TINY = [
    f"model.vision.image_size={SIZE}", "model.llm.config.hidden_size=32",
    "model.llm.config.intermediate_size=64", "model.llm.config.num_hidden_layers=1",
    "model.llm.config.num_attention_heads=2", "model.llm.config.num_key_value_heads=2",
    "dataset.batch_size=8", "trainer.max_steps=4", "trainer.val_check_interval=2",
    "trainer.limit_val_batches=1", "checkpoint_every_n_steps=2", "optim.warmup_steps=1",
    "optim.compile=false", "callbacks.rollout=null",
]  # fmt: skip


def run(module, *args):
    done = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.mark.parametrize("task", MT10)
def test_the_expert_solves_every_mt10_task(task):
    env = MetaWorldEnv(tasks=task, image_size=16, cameras=("topview",), privileged=True)
    try:
        result = run_episode(env, MetaWorldExpert(), seed=7)
    finally:
        env.close()
    assert result.success, f"{task}: no success in {result.length} steps"


def test_noise_perturbs_the_executed_action_but_not_the_label():
    env = MetaWorldEnv(tasks="push-v3", image_size=16, cameras=("topview",), privileged=True)
    try:
        obs, _ = env.reset(seed=0)
        expert = MetaWorldExpert(noise=0.5, seed=0)
        executed = expert.act(obs)
        clean = MetaWorldExpert().act(obs)
        obs.pop(keys.PRIVILEGED)
        with pytest.raises(ValueError, match="privileged=True"):
            expert.act(obs)
    finally:
        env.close()
    assert np.array_equal(expert.clean_action, clean) and not np.allclose(executed, clean)
    with pytest.raises(ValueError, match="noise=-1"):
        MetaWorldExpert(noise=-1)


def test_collect_train_and_evaluate_per_task(tmp_path):
    store = tmp_path / "mw.zarr"
    run("policies.cli.collect", "--config-dir", "datasets/metaworld_mt10_wrist", "--config-name",
        "recipe", *ENV, "episodes=4", "workers=1", "episodes_per_task=3", f"out={store}")  # fmt: skip
    card = (store / "README.md").read_text()
    # seeds 0-3 cycle over the tasks (2 each), then the recipe's top-up adds one of each
    assert "reach-v3: 3" in card and "door-open-v3: 3" in card
    seeds = list(EpisodeStore(store).seeds)
    assert seeds[:4] == [0, 1, 2, 3] and len(seeds) == 6 == len(set(seeds))

    out = tmp_path / "run"
    run("vla.cli.train", "experiment=metaworld_mt10", *ENV, f"dataset.path={store}",
        f"out={out}", *TINY)  # fmt: skip
    info = json.loads((out / "checkpoints" / "last" / "training.json").read_text())
    assert info["image_keys"] == ["image_topview", "image_gripperPOV"]  # top view + wrist
    assert sorted(info["tasks"]) == ["door-open-v3", "reach-v3"]

    ev = tmp_path / "eval"
    run("policies.cli.eval", f"checkpoint={out / 'checkpoints' / 'last'}", *ENV,
        "env.max_episode_steps=5", "episodes_per_task=2", "num_envs=2", "video_episodes=1",
        f"out={ev}")  # fmt: skip
    report = json.loads((ev / "report.json").read_text())
    assert {t: r["episodes"] for t, r in report["per_task"].items()} == {
        "reach-v3": 2,
        "door-open-v3": 2,
    }
    assert report["episodes"] == 4 and (ev / "success_per_task.png").exists()

    # benchmarks/state_shortcut.py on the same checkpoint: a row per axis and step
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "state_shortcut.py"
    done = subprocess.run(
        [sys.executable, str(script), str(out / "checkpoints" / "last"), "--episodes", "3",
         "--steps", "0", "2"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.count("│") == 6]  # body rows
    assert len(rows) == 2 * 3, done.stdout  # x, y, z after 0 and after 2 steps
