"""End to end through the CLIs: collect -> train -> resume -> evaluate, and 2-process DDP."""

import json
import shutil
import subprocess
import sys

import pytest

TINY = [
    "env.image_size=32", "model.vision.image_size=32", "model.llm.config.hidden_size=32",
    "model.llm.config.intermediate_size=64", "model.llm.config.num_hidden_layers=1",
    "model.llm.config.num_attention_heads=2", "model.llm.config.num_key_value_heads=2",
    "dataset.batch_size=8", "dataset.num_workers=0", "trainer.val_check_interval=4",
    "trainer.limit_val_batches=2", "trainer.log_every_n_steps=2", "checkpoint_every_n_steps=4",
    "callbacks.rollout.every_n_steps=8", "callbacks.rollout.episodes=1", "optim.warmup_steps=2",
]  # fmt: skip


def run(module, *args, check=True):
    done = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True)
    if check:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "touch.zarr"
    run("policies.cli.collect", "env=touch", "env.image_size=32", "episodes=12", "workers=1",
        f"out={path}")  # fmt: skip
    return path


def test_fine_tune_on_a_grown_store_keeps_the_checkpoints_tokenizer(store, tmp_path):
    """DAgger's workflow: episodes appended to the store change the fitted BPE, so init_from
    names the fix, and with the checkpoint's tokenizer (loaded, not refitted) it trains."""
    first = tmp_path / "first"
    run("vla.cli.train", f"dataset.path={store}", f"out={first}", "trainer.max_steps=2",
        *TINY)  # fmt: skip
    grown = tmp_path / "grown.zarr"
    shutil.copytree(store, grown)
    # 12 more episodes: more instructions, so a BPE fitted on them is another tokenizer
    run("policies.cli.collect", "env=touch", "env.image_size=32", "episodes=24", "workers=1",
        f"out={grown}")  # fmt: skip
    ckpt = first / "checkpoints" / "last"
    args = [f"dataset.path={grown}", f"init_from={ckpt}", "trainer.max_steps=2",
            *TINY]  # fmt: skip
    refused = run("vla.cli.train", *args, f"out={tmp_path / 'refused'}", check=False)
    assert refused.returncode != 0
    assert f"model.text_tokenizer.path={ckpt / 'tokenizer'}" in refused.stderr
    run(
        "vla.cli.train",
        *args,
        f"out={tmp_path / 'tuned'}",
        f"model.text_tokenizer.path={ckpt / 'tokenizer'}",
    )
    tuned = tmp_path / "tuned" / "checkpoints" / "last" / "tokenizer"
    for name in ("tokenizer.json", "added_tokens.json"):
        assert (tuned / name).read_bytes() == (ckpt / "tokenizer" / name).read_bytes()


def test_train_resume_and_evaluate(store, tmp_path):
    out = tmp_path / "run"
    first = run(
        "vla.cli.train", f"dataset.path={store}", f"out={out}", "trainer.max_steps=8", *TINY
    )
    log = first.stdout + first.stderr  # a clean run's log: no spurious warnings, steps not epochs
    for noise in ("exists and is not empty", "deprecated", "Tip:", "Epoch ", "Warning"):
        assert noise not in log, noise
    assert "train: step 8/8 (100%)" in log
    ckpts = out / "checkpoints"
    for name in ("last", "best_val", "best_success"):
        assert (ckpts / name / "model.safetensors").exists(), name
    info = json.loads((ckpts / "last" / "training.json").read_text())
    assert info["step"] == 8 and info["image_keys"] == ["image"]
    assert (out / "logs" / "metrics.csv").exists()

    run("vla.cli.train", f"dataset.path={store}", f"out={out}", "trainer.max_steps=12",
        "resume=true", *TINY)  # fmt: skip
    info = json.loads((ckpts / "last" / "training.json").read_text())
    assert info["step"] == 12  # continued from 8, not restarted

    ev = tmp_path / "eval"
    run("policies.cli.eval", "policy=vla", f"checkpoint={ckpts / 'last'}", "env=touch",
        "env.image_size=32", "episodes=2", "num_envs=1", f"out={ev}")  # fmt: skip
    report = json.loads((ev / "report.json").read_text())
    for field in ("success_rate", "episodes", "ci95", "per_task", "split", "mean_episode_length",
                  "checkpoint", "seed"):  # fmt: skip
        assert field in report
    assert report["episodes"] == 2 and report["checkpoint"] == str(ckpts / "last")

    wrong = run("policies.cli.eval", "policy=vla", f"checkpoint={ckpts / 'last'}", "env=touch",
                "env.image_size=48", "episodes=1", "num_envs=1", "out=null", check=False)  # fmt: skip
    assert wrong.returncode != 0 and "env.image_size=32" in wrong.stderr


def test_ddp_two_processes_keep_identical_weights(store, tmp_path):
    out = tmp_path / "ddp"
    run("vla.cli.train", f"dataset.path={store}", f"out={out}", "trainer=ddp_cpu",
        "trainer.max_steps=4", "callbacks.rollout=null",
        f"+callbacks.digest={{_target_:vla.training.digest.ParameterDigest,dirpath:{out}/digest}}",
        *[a for a in TINY if not a.startswith("callbacks.rollout")])  # fmt: skip
    ranks = [json.loads((out / "digest" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["step"] == ranks[1]["step"] == 4
    assert ranks[0]["sha256"] == ranks[1]["sha256"]


def test_missing_dataset_fails_before_training(tmp_path):
    done = run("vla.cli.train", f"dataset.path={tmp_path / 'nope.zarr'}", f"out={tmp_path}",
               check=False)  # fmt: skip
    assert done.returncode != 0 and "vla-collect" in done.stderr


def test_resume_without_a_run_fails_clearly(store, tmp_path):
    done = run("vla.cli.train", f"dataset.path={store}", f"out={tmp_path}", "resume=true",
               check=False)  # fmt: skip
    assert done.returncode != 0 and "nothing to resume" in done.stderr


def test_image_size_disagreement_fails_before_training(store, tmp_path):
    done = run("vla.cli.train", f"dataset.path={store}", f"out={tmp_path}", "env.image_size=32",
               "model.vision.image_size=64", check=False)  # fmt: skip
    assert done.returncode != 0 and "model.vision.image_size=32" in done.stderr


def test_camera_disagreement_fails_before_training(store, tmp_path):
    done = run("vla.cli.train", f"dataset.path={store}", f"out={tmp_path}", "env.image_size=32",
               "model.vision.image_size=32", "env.cameras=[top]", check=False)  # fmt: skip
    assert done.returncode != 0 and "env.cameras=['front']" in done.stderr


def test_unknown_action_bounds_fail_before_training(store, tmp_path):
    done = run("vla.cli.train", f"dataset.path={store}", f"out={tmp_path}", "env.image_size=32",
               "model.vision.image_size=32", "action_bounds=q05", check=False)  # fmt: skip
    assert done.returncode != 0 and "action_bounds='q05'" in done.stderr


def test_recall_history_policy_with_video_qa_end_to_end(tmp_path):
    """Memory task: collect (questions stored) -> train with history=start and QA co-training
    -> evaluate: the report has the video-QA accuracy beside the success rate."""
    data = tmp_path / "recall.zarr"
    run("policies.cli.collect", "env=recall", "env.image_size=32", "episodes=6", "workers=1",
        f"out={data}")  # fmt: skip
    out = tmp_path / "run"
    run("vla.cli.train", "env=recall", f"dataset.path={data}", f"out={out}", "trainer.max_steps=4",
        "model.obs_horizon=2", "model.history=start", "dataset.qa_fraction=0.5",
        *TINY)  # fmt: skip
    metrics = (out / "logs" / "metrics.csv").read_text()
    assert "train/text_loss" in metrics.splitlines()[0]  # co-trained on the questions
    model = json.loads((out / "checkpoints" / "last" / "config.json").read_text())["model"]
    assert model["history"] == "start" and model["obs_horizon"] == 2
    ev = tmp_path / "eval"
    run("policies.cli.eval", "policy=vla", f"checkpoint={out / 'checkpoints' / 'last'}",
        "env=recall", "env.image_size=32", "episodes=2", "num_envs=1", f"out={ev}")  # fmt: skip
    report = json.loads((ev / "report.json").read_text())
    assert report["qa_episodes"] == 2 and 0 <= report["qa_accuracy"] <= 1
    detail = report["episodes_detail"][0]
    assert detail["question"] and detail["answer"].startswith("the ")
    assert isinstance(detail["predicted"], str)


def test_spoken_instructions_end_to_end(tmp_path):
    """Speech: collect with espeak-ng voices -> train an audio-only policy -> evaluate it on
    held-out voices -> the demo film with a synthesized command; bad input fails clearly."""
    pytest.importorskip("policies.speech")
    import shutil

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (make speech-deps)")
    data = tmp_path / "spoken.zarr"
    run("policies.cli.collect", "env=touch", "env.image_size=32", "episodes=4", "workers=1",
        "speech=true", f"out={data}")  # fmt: skip
    out = tmp_path / "run"
    speech = ["model/audio=speech", "dataset.audio=true", "model.audio_encoder.width=32",
              "model.audio_encoder.depth=1", "model.audio_encoder.heads=2"]  # fmt: skip
    run("vla.cli.train", f"dataset.path={data}", f"out={out}", "trainer.max_steps=4", *speech,
        *TINY)  # fmt: skip
    ckpt = out / "checkpoints" / "last"
    ev = tmp_path / "eval"
    run("policies.cli.eval", "policy=vla", f"checkpoint={ckpt}", "env=touch", "env.image_size=32",
        "split=test", "episodes=2", "num_envs=1", f"out={ev}")  # fmt: skip
    assert json.loads((ev / "report.json").read_text())["episodes"] == 2

    demo = tmp_path / "demo"
    done = run("policies.cli.demo", "audio", f"checkpoint={ckpt}", 'say="touch the red ball"',
               "env.image_size=32", "+env.render_size=64", f"out={demo}")  # fmt: skip
    assert (demo / "demo.mp4").stat().st_size > 0 and (demo / "command.wav").exists()
    assert "red sphere" in done.stdout  # the scene holds the object the command names

    # a text store for a speech model, silence, a text checkpoint for the audio demo
    text_only = run("vla.cli.train", f"dataset.path={data}", f"out={tmp_path / 'x'}",
                    "trainer.max_steps=1", "model/audio=speech", *TINY, check=False)  # fmt: skip
    assert text_only.returncode != 0 and "dataset.audio=true" in text_only.stderr
    import numpy as np

    from vla.audio import save_wav

    save_wav(tmp_path / "silence.wav", np.zeros(8000, np.float32), 16000)
    silent = run("policies.cli.demo", "audio", f"checkpoint={ckpt}",
                 f"wav={tmp_path / 'silence.wav'}", "env.image_size=32", f"out={demo}",
                 check=False)  # fmt: skip
    assert silent.returncode != 0 and "silen" in silent.stderr.lower()
