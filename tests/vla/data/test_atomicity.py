"""A writer process killed with SIGKILL leaves a store with exactly its committed episodes.

The child appends deterministic episodes. To kill it at exact points *inside* an append, it counts
the file renames zarr's LocalStore does (every chunk and metadata write ends in one) during one
chosen episode and SIGKILLs itself at the n-th: after the temporary file is written, before it
is renamed into place. A second test kills the child from outside at arbitrary moments.
"""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import zarr

from vla import keys
from vla.data import EpisodeStore, EpisodeWriter

# shared by the child (exec'd from the source) and the checks here
EPISODE_SRC = """
import numpy as np

def episode(i):
    rng = np.random.default_rng(i)
    n = 5 + i % 4  # 5..8 steps: appends straddle the 4-frame image chunks
    return (
        {"image": rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8),
         "action": rng.uniform(-1, 1, (n, 4)).astype(np.float32)},
        {"instruction": f"episode {i}", "task": "vla/Touch-v0", "seed": i},
    )

def spoken(i):  # the same episode with a spoken instruction of 700..1300 samples
    data, meta = episode(i)
    wave = np.random.default_rng(1000 + i).uniform(-1, 1, 700 + 200 * (i % 4))
    return data, {**meta, "audio": wave.astype(np.float32), "audio_sample_rate": 16000}
"""
CHILD_SRC = (
    EPISODE_SRC
    + """
import os, pathlib, signal, sys
from vla.data import EpisodeWriter

path, total, kill_episode, kill_at = sys.argv[1], *map(int, sys.argv[2:5])
make = spoken if sys.argv[5:] == ["audio"] else episode
writer = EpisodeWriter.create_or_open(
    path, env_spec={"control_hz": 10}, keys=["image", "action"], image_chunk_bytes=4 * 768
)
renames, armed = [0], [False]
original = pathlib.Path.replace

def replace(self, target):
    if armed[0]:
        renames[0] += 1
        if renames[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    return original(self, target)

pathlib.Path.replace = replace
for i in range(writer.num_episodes, total):
    armed[0] = i == kill_episode
    writer.append(*make(i))
    print(f"committed {i} renames {renames[0]}", flush=True)
"""
)
namespace: dict = {}
exec(EPISODE_SRC, namespace)
episode, spoken = namespace["episode"], namespace["spoken"]


def run_child(path, total, kill_episode=-1, kill_at=0, audio=False):
    args = [str(path), str(total), str(kill_episode), str(kill_at), *(["audio"] if audio else [])]
    return subprocess.run([sys.executable, "-c", CHILD_SRC, *args], capture_output=True, text=True)


def assert_store_holds(path, count):
    store = EpisodeStore(path)  # opens (validation included) despite the kill
    assert store.num_episodes == count
    for i in range(count):
        want, meta = episode(i)
        got = store.episode(i)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])
        assert store.instructions[i] == meta[keys.INSTRUCTION]


@pytest.mark.parametrize("kill_episode", [0, 2])
def test_sigkill_inside_append_keeps_exactly_committed_episodes(tmp_path, kill_episode):
    # how many renames the append of `kill_episode` makes, from an identical uninterrupted run
    counted = run_child(tmp_path / "count.zarr", kill_episode + 1, kill_episode, 0)
    assert counted.returncode == 0, counted.stderr
    renames = int(counted.stdout.split()[-1])
    assert renames >= 6  # payload chunks + metadata, then the ends chunk and the commit

    # first rename, the middle of the payload, the episode_ends chunk, the commit itself
    for kill_at in sorted({1, renames // 2, renames - 1, renames}):
        path = tmp_path / f"kill{kill_at}.zarr"
        killed = run_child(path, kill_episode + 3, kill_episode, kill_at)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        assert_store_holds(path, kill_episode)
        assert list(path.rglob("*.partial"))  # the rename that never happened

        # resume: a new writer continues after the committed episodes to the requested count
        resumed = run_child(path, kill_episode + 3)
        assert resumed.returncode == 0, resumed.stderr
        assert not list(path.rglob("*.partial"))
        assert_store_holds(path, kill_episode + 3)


def test_sigkill_from_outside_at_random_moments(tmp_path):
    rng = np.random.default_rng(0)
    for trial in range(3):
        path = tmp_path / f"outside{trial}.zarr"
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD_SRC, str(path), "100000", "-1", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        reported = -1
        while reported < 2:  # let it commit a few, then kill at an arbitrary moment
            reported = int(child.stdout.readline().split()[1])
        time.sleep(rng.uniform(0, 0.05))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
        store = EpisodeStore(path)
        assert store.num_episodes >= reported + 1  # nothing reported as committed is lost
        assert_store_holds(path, store.num_episodes)  # and every committed one is intact
        with EpisodeWriter(path) as writer:  # a writer reopens it cleanly
            writer.append(*episode(writer.num_episodes))
        assert_store_holds(path, store.num_episodes + 1)


def test_sigkill_inside_an_append_with_audio_leaves_a_tail_the_writer_truncates(tmp_path):
    counted = run_child(tmp_path / "count.zarr", 2, 1, 0, audio=True)
    assert counted.returncode == 0, counted.stderr
    renames = int(counted.stdout.split()[-1])
    for kill_at in (renames // 2, renames - 1):  # mid-payload; all payload written, no commit
        path = tmp_path / f"kill{kill_at}.zarr"
        killed = run_child(path, 4, 1, kill_at, audio=True)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        store = EpisodeStore(path)
        assert store.num_episodes == 1 and store.audio_ends.tolist() == [700]
        np.testing.assert_allclose(store.audio(0), spoken(0)[1]["audio"], atol=1 / 32767)
        audio = zarr.open_array(path / keys.META / keys.AUDIO, mode="r")
        if kill_at == renames - 1:  # episode 1's samples sit past the committed end
            assert audio.shape == (700 + 900,)

        resumed = run_child(path, 4, audio=True)
        assert resumed.returncode == 0, resumed.stderr
        store = EpisodeStore(path)
        assert store.num_episodes == 4 and store.audio_ends.tolist() == [700, 1600, 2700, 4000]
        assert zarr.open_array(path / keys.META / keys.AUDIO, mode="r").shape == (4000,)
        for i in range(4):
            np.testing.assert_allclose(store.audio(i), spoken(i)[1]["audio"], atol=1 / 32767)
