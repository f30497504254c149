import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from policies.collect import collect
from policies.speech import TEST_VOICES, TRAIN_VOICES
from vla.data import EpisodeStore

ENV = {"_target_": "gymnasium.make", "id": "envs:vla/MultiTask-v0", "image_size": 32}
TOUCH = {"_target_": "gymnasium.make", "id": "envs:vla/Touch-v0", "image_size": 32}
needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng not installed (make speech-deps)"
)


def arrays(path):
    store = EpisodeStore(path)
    return {k: store.read(k) for k in store.keys}, store


def test_collect_writes_expert_episodes_and_a_card(tmp_path):
    s = collect(ENV, tmp_path / "d.zarr", episodes=5, workers=1, progress=False)
    assert (s.episodes, s.added) == (5, 5) and s.expert_successes == s.attempted >= 5
    data, store = arrays(tmp_path / "d.zarr")
    assert data["image"].shape[1:] == (32, 32, 3) and data["image"].dtype == np.uint8
    assert data["state"].shape[1:] == (7,) and data["action"].shape[1:] == (4,)
    assert np.all(np.abs(data["action"]) <= 1)
    assert list(store.seeds) == [0, 1, 2, 3, 4] and all(store.successes)
    assert store.env_spec["env_id"] == "vla/MultiTask-v0" and store.env_spec["control_hz"] == 10
    assert all(store.instructions) and set(store.tasks) <= {
        "touch", "lift", "push", "pick_place", "relation"
    }  # fmt: skip
    card = (tmp_path / "d.zarr" / "README.md").read_text()
    assert "| episodes | 5 |" in card and "Example instructions" in card


def test_same_store_with_one_or_two_workers_and_after_resume(tmp_path):
    collect(ENV, tmp_path / "one.zarr", episodes=4, workers=1, noise=0.1, progress=False)
    collect(ENV, tmp_path / "two.zarr", episodes=4, workers=2, noise=0.1, progress=False)
    collect(ENV, tmp_path / "resumed.zarr", episodes=2, workers=1, noise=0.1, progress=False)
    s = collect(ENV, tmp_path / "resumed.zarr", episodes=4, workers=2, noise=0.1, progress=False)
    assert s.added == 2
    one, _ = arrays(tmp_path / "one.zarr")
    for other in ("two.zarr", "resumed.zarr"):
        data, store = arrays(tmp_path / other)
        assert list(store.seeds) == [0, 1, 2, 3]
        for k in one:
            np.testing.assert_array_equal(one[k], data[k])


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="episodes=0"):
        collect(ENV, tmp_path / "x.zarr", episodes=0)
    with pytest.raises(ValueError, match="noise=-0.5"):
        collect(ENV, tmp_path / "x.zarr", episodes=1, noise=-0.5)


def test_episodes_per_task_tops_up_every_task_of_a_multi_task_env(tmp_path):
    from collections import Counter

    names = ("touch", "lift", "push", "pick_place", "relation")
    out = tmp_path / "mt.zarr"
    collect(ENV, out, episodes=3, workers=1, progress=False)  # three random tasks
    before = Counter(EpisodeStore(out).tasks)
    s = collect(ENV, out, episodes=3, episodes_per_task=2, workers=2, progress=False)
    store = EpisodeStore(out)
    held = Counter(store.tasks)
    assert all(held[n] == max(2, before[n]) for n in names), (before, held)
    assert s.added == sum(held.values()) - 3 and s.episodes == len(store)
    seeds = list(store.seeds)
    assert seeds == sorted(seeds) and len(set(seeds)) == len(seeds) and seeds[:3] == [0, 1, 2]
    card = (out / "README.md").read_text()
    assert "| tasks |" in card and all(f"{n}: {held[n]}" in card for n in names)
    again = collect(ENV, out, episodes=3, episodes_per_task=2, workers=1, progress=False)
    assert again.added == again.attempted == 0 and len(EpisodeStore(out)) == len(store)
    # from nothing: every task exactly this many, each part's seeds after the last
    fresh = tmp_path / "fresh.zarr"
    collect(ENV, fresh, episodes=0, episodes_per_task=1, workers=1, progress=False)
    store = EpisodeStore(fresh)
    assert sorted(store.tasks) == sorted(names) and list(store.seeds) == sorted(store.seeds)


def test_episodes_per_task_needs_a_multi_task_env(tmp_path):
    with pytest.raises(ValueError, match="needs a multi-task env"):
        collect(TOUCH, tmp_path / "t.zarr", episodes=1, episodes_per_task=2, progress=False)
    with pytest.raises(ValueError, match="episodes_per_task=0"):
        collect(ENV, tmp_path / "t.zarr", episodes=1, episodes_per_task=0, progress=False)
    assert not (tmp_path / "t.zarr").exists()


def test_cli_killed_mid_run_resumes_to_the_requested_count(tmp_path):
    out = tmp_path / "touch.zarr"
    cmd = [
        sys.executable, "-m", "policies.cli.collect", "env=touch", "env.image_size=32",
        f"out={out}", "workers=1",
    ]  # fmt: skip
    proc = subprocess.Popen(
        [*cmd, "episodes=500"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            time.sleep(0.3)
            if (out / "zarr.json").exists() and len(EpisodeStore(out, check_values=False)) >= 3:
                break
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    killed_at = len(EpisodeStore(out))
    assert 3 <= killed_at < 500
    done = subprocess.run([*cmd, f"episodes={killed_at + 3}"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    info = subprocess.run(
        [sys.executable, "-m", "vla.cli.data", "info", str(out), "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    summary = json.loads(info.stdout)
    assert summary["episodes"] == killed_at + 3
    assert list(EpisodeStore(out).seeds) == list(range(killed_at + 3))


def test_noisy_collection_stores_the_experts_clean_actions(tmp_path):
    env = {"_target_": "gymnasium.make", "id": "envs:vla/Touch-v0", "image_size": 32}
    collect(env, tmp_path / "n.zarr", episodes=3, workers=1, noise=0.3, progress=False)
    actions = EpisodeStore(tmp_path / "n.zarr").read("action")
    # the touch expert always commands "closed"; executed actions had N(0, 0.3) added
    assert np.all(actions[:, 3] == 1.0)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "policies.cli.collect", "env=touch", "env.image_size=32", *args]
    return subprocess.run(cmd, capture_output=True, text=True)


@needs_espeak
def test_speech_stores_spoken_instructions_the_same_with_any_worker_count(tmp_path):
    stores = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}.zarr"
        done = run_cli("episodes=3", f"workers={workers}", "speech=true", f"out={out}")
        assert done.returncode == 0, done.stderr
        stores[workers] = EpisodeStore(out)
    one, two = stores[1], stores[2]
    assert one.has_audio and one.audio_sample_rate == 16000 and one.num_episodes == 3
    for i in range(3):
        clip = one.audio(i)
        words = len(one.instructions[i].split())
        assert 0.2 * words < clip.size / 16000 < 0.6 * words + 1.0  # 130-195 wpm plus silences
        assert 0.05 < np.abs(clip).max() <= 1.0  # -20..-3 dBFS speech plus noise
        speech = one.extras[i]["speech"]
        assert speech["voice"] in TRAIN_VOICES and speech["seed"] == 0
        np.testing.assert_array_equal(one.audio_pcm(i), two.audio_pcm(i))
    assert one.extras == two.extras and one.audio_ends.tolist() == two.audio_ends.tolist()
    card = (one.path / "README.md").read_text()
    assert "| speech | espeak-ng" in card and "| audio | 16000 Hz" in card


@needs_espeak
def test_speech_on_the_test_split_uses_held_out_voices_and_resumes_only_alike(tmp_path):
    out = tmp_path / "test.zarr"
    collect({**TOUCH, "split": "test"}, out, episodes=2, workers=1, speech=True, progress=False)
    store = EpisodeStore(out)
    assert store.splits == ["test", "test"]
    assert all(x["speech"]["voice"] in TEST_VOICES for x in store.extras)
    with pytest.raises(ValueError, match="speech=false but .* holds spoken instructions"):
        collect({**TOUCH, "split": "test"}, out, episodes=3, workers=1, progress=False)
    with pytest.raises(ValueError, match="speech_seed=1 but .* speech_seed=0"):
        collect({**TOUCH, "split": "test"}, out, episodes=3, workers=1, speech=True, speech_seed=1)
    plain = tmp_path / "plain.zarr"
    collect(TOUCH, plain, episodes=1, workers=1, progress=False)
    with pytest.raises(ValueError, match="speech=true but .* without audio.*new out path"):
        collect(TOUCH, plain, episodes=2, workers=1, speech=True, progress=False)
    assert len(EpisodeStore(out)) == 2 and len(EpisodeStore(plain)) == 1


def test_missing_espeak_fails_before_any_episode(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match="espeak-ng not found.*apt-get install espeak-ng"):
        collect(TOUCH, tmp_path / "s.zarr", episodes=1, workers=1, speech=True, progress=False)
    assert not (tmp_path / "s.zarr").exists()


def test_progress_off_a_terminal_is_plain_lines(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VLA_PROGRESS_INTERVAL", "1000")  # only the final line
    collect(TOUCH, tmp_path / "p.zarr", episodes=3, workers=1)
    err = capsys.readouterr().err
    assert "\r" not in err
    (line,) = err.splitlines()
    assert line.startswith("collect vla/Touch-v0: 3/3 episodes (100%), ")
    assert line.endswith("expert_success=100%, run=3")
