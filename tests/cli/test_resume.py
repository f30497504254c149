"""A killed run resumed with resume=true trains to max_steps on exactly the data it would have."""

import csv
import hashlib
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
from hydra import compose, initialize_config_dir

from vla import keys
from vla.cli.train import train
from vla.training.run_folder import RunFolderError, prepare_run_folder

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
MAX_STEPS, BATCH = 24, 8
TINY = [
    "env.image_size=32", "model.vision.image_size=32", "model.llm.config.hidden_size=32",
    "model.llm.config.intermediate_size=64", "model.llm.config.num_hidden_layers=1",
    "model.llm.config.num_attention_heads=2", "model.llm.config.num_key_value_heads=2",
    f"dataset.batch_size={BATCH}", "dataset.num_workers=0", "trainer.val_check_interval=5",
    "trainer.limit_val_batches=1", "trainer.log_every_n_steps=1", "checkpoint_every_n_steps=1",
    "callbacks.rollout=null", "callbacks.progress=null", "+trainer.enable_progress_bar=false",
    "+trainer.enable_model_summary=false", "optim.warmup_steps=2", "trainer.precision=32-true",
    f"trainer.max_steps={MAX_STEPS}",
]  # fmt: skip


class Killed(RuntimeError):
    pass


class BatchLog(L.Callback):
    """Digest of the batch each step trains on: ``seen[s]`` is the batch of step s + 1."""

    def __init__(self, kill_at: int | None = None):
        self.seen: dict[int, str] = {}
        self.kill_at = kill_at

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        digest = hashlib.sha256(batch[keys.ACTION].numpy().tobytes())
        digest.update(batch[keys.IMAGE].numpy().tobytes())
        self.seen[trainer.global_step] = digest.hexdigest()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == self.kill_at:  # after the checkpoint of this step is saved
            raise Killed(f"killed at step {self.kill_at}")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "touch.zarr"
    cmd = [sys.executable, "-m", "policies.cli.collect", "env=touch", "env.image_size=32",
           "episodes=10", "workers=1", f"out={path}"]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    return path


def config(store, out, *extra):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("train", [f"dataset.path={store}", f"out={out}", *TINY, *extra])


def metrics_steps(out: Path) -> list[int]:
    with open(out / "logs" / "metrics.csv", newline="") as f:
        return [int(float(r["step"])) for r in csv.DictReader(f) if r.get("train/loss")]


def test_resume_continues_at_the_same_step_and_data_position(store, tmp_path):
    whole = BatchLog()
    reference = train(config(store, tmp_path / "whole"), [whole])
    assert reference.global_step == MAX_STEPS and sorted(whole.seen) == list(range(MAX_STEPS))
    windows = len(reference.datamodule.train_set)
    # kill points: early; where step * batch % len(dataset) is within a batch of the epoch's end
    # (the old sampler left an empty epoch there); and one exactly at an epoch boundary
    edge = next(s for s in range(2, MAX_STEPS) if windows - (s * BATCH) % windows < BATCH)
    boundary = next((s for s in range(2, MAX_STEPS) if (s * BATCH) % windows == 0), None)
    for kill in sorted({3, edge, *([boundary] if boundary else [])}):
        out = tmp_path / f"kill{kill}"
        first = BatchLog(kill_at=kill)
        with pytest.raises(Killed):
            train(config(store, out), [first])
        second = BatchLog()
        resumed = train(config(store, out, "resume=true"), [second])
        assert resumed.global_step == MAX_STEPS, f"kill at {kill}"
        assert min(second.seen) == kill  # restarted after the checkpoint, not from 0
        seen = {**{s: d for s, d in first.seen.items() if s < kill}, **second.seen}
        assert seen == whole.seen, f"kill at {kill}: another data order after resuming"
        steps = metrics_steps(out)  # the first run's rows kept, none twice
        assert steps == sorted(set(steps)) and steps[0] < kill < steps[-1]


def test_resume_past_max_steps_and_reusing_a_run_folder_are_refused(store, tmp_path):
    out = tmp_path / "run"
    train(config(store, out, "trainer.max_steps=4"))
    with pytest.raises(ValueError, match="already >= trainer.max_steps=4"):
        train(config(store, out, "trainer.max_steps=4", "resume=true"))
    with pytest.raises(RunFolderError, match="resume=true.*overwrite=true"):
        train(config(store, out, "trainer.max_steps=4"))  # would overwrite its checkpoints
    assert (out / "logs" / "metrics.csv").exists()  # nothing was touched
    trainer = train(config(store, out, "trainer.max_steps=2", "overwrite=true"))
    assert trainer.global_step == 2 and max(metrics_steps(out)) < 2  # a new run, old rows gone


def test_val_fraction_zero_trains_on_every_episode_without_validating(store, tmp_path, recwarn):
    out = tmp_path / "run"
    rollouts = ["+callbacks.rollout={_target_: policies.rollout_callback.RolloutEvaluation, "
                "_recursive_: false, env: ${env}, every_n_steps: 12, episodes: 1}"]  # fmt: skip
    trainer = train(config(store, out, "dataset.val_fraction=0", *rollouts))
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert names == ["best_success", "last", "last.ckpt"]  # no validation, so no best_val
    with open(out / "logs" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and not any(r.get("val/loss") for r in rows)
    # the rollouts follow the training steps instead of the validation loop
    (rollout,) = [c for c in trainer.callbacks if hasattr(c, "run_if_due")]
    assert [step for step, _ in rollout.history] == [12, 24]
    assert not [w for w in recwarn if "Total length of `DataLoader`" in str(w.message)]


def test_run_folder_rules(tmp_path):
    prepare_run_folder(tmp_path / "new", resume=False, overwrite=False)  # fresh: fine
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunFolderError, match="is a file"):
        prepare_run_folder(tmp_path / "file", resume=False, overwrite=False)
    with pytest.raises(ValueError, match="contradict"):
        prepare_run_folder(tmp_path, resume=True, overwrite=True)
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "notes.txt").write_text("mine")
    prepare_run_folder(run, resume=False, overwrite=True)
    assert not (run / "checkpoints").exists() and (run / "notes.txt").read_text() == "mine"
