import shutil

import numpy as np
import pytest
import zarr

from vla import keys
from vla.data import EpisodeStore, InvalidStoreError

ACTION = f"{keys.DATA}/{keys.ACTION}"


def corrupt_attr(name, value):
    def change(path):
        root = zarr.open_group(path, mode="r+")
        root.attrs[name] = value

    return change


def delete(node):
    return lambda path: shutil.rmtree(path / node)


def shorten(path):
    action = zarr.open_group(path, mode="r+")[ACTION]
    action.resize((action.shape[0] - 2, 4))


def wrong_dtype(path):
    root = zarr.open_group(path, mode="r+")
    values = root[ACTION][:].astype(np.float64)
    del root[ACTION]
    root.create_array(ACTION, data=values)


def nan_action(path):
    ends = zarr.open_group(path, mode="r")[f"{keys.META}/{keys.EPISODE_ENDS}"][:]
    action = zarr.open_group(path, mode="r+")[ACTION]
    action[ends[1] + 1] = np.nan  # episode 2, its second step


def unordered_ends(path):
    ends = zarr.open_group(path, mode="r+")[f"{keys.META}/{keys.EPISODE_ENDS}"]
    ends[2] = ends[1]


@pytest.mark.parametrize(
    "corrupt, match",
    [
        (corrupt_attr("format_version", 99), "format_version=99 is not supported.*upgrade vla"),
        (corrupt_attr("schema", "something.else"), "not a vla episode store"),
        (delete(f"{keys.DATA}/{keys.STATE}"), "array 'data/state' is missing"),
        (delete(f"{keys.META}/{keys.TASK}"), "array 'meta/task' is missing"),
        (delete(f"{keys.META}/{keys.EPISODE_ENDS}"), "array 'meta/episode_ends' is missing"),
        (shorten, "'data/action' has \\d+ steps but 'meta/episode_ends' says \\d+ \\(episode 3"),
        (wrong_dtype, "'data/action' has dtype float64, expected float32"),
        (nan_action, "'data/action' holds NaN/inf .*episode 2.*step 1 of the episode"),
        (unordered_ends, "episode 2 ends at \\d+ <= the end of episode 1"),
    ],
)
def test_bad_store_raises_named_error(store_factory, corrupt, match):
    path = store_factory(4, lengths=[3, 4, 5, 6])
    EpisodeStore(path)  # valid before
    corrupt(path)
    with pytest.raises(InvalidStoreError, match=match) as info:
        EpisodeStore(path)
    assert isinstance(info.value, ValueError)
    assert str(path) in str(info.value)


def test_not_a_store(tmp_path):
    with pytest.raises(InvalidStoreError, match="no such episode store"):
        EpisodeStore(tmp_path / "missing.zarr")
    with pytest.raises(InvalidStoreError, match="not a Zarr v3 store"):
        EpisodeStore(tmp_path)
    zarr.create_array(tmp_path / "array.zarr", shape=(3,), dtype=np.int64)
    with pytest.raises(InvalidStoreError, match="not an episode store"):
        EpisodeStore(tmp_path / "array.zarr")


def test_summary_and_bytes(store_factory):
    store = EpisodeStore(store_factory(4, lengths=[3, 4, 5, 6]))
    info = store.summary()
    assert info["episodes"] == 4 and info["steps"] == 18
    assert info["tasks"] == {"vla/Push-v0": 2, "vla/Touch-v0": 2}
    assert info["keys"][keys.IMAGE]["shape"] == [8, 8, 3]
    assert info["keys"][keys.ACTION]["dtype"] == "float32"
    assert info["disk_bytes"] == store.disk_bytes() > 0
    assert info["bytes_per_frame"] == pytest.approx(store.disk_bytes_of_data() / 18)
    assert store.episode_of(0) == 0 and store.episode_of(3) == 1 and store.episode_of(17) == 3


def test_empty_store_opens(tmp_path, env_spec):
    from vla.data import EpisodeWriter

    EpisodeWriter(tmp_path / "s.zarr", env_spec=env_spec).close()
    store = EpisodeStore(tmp_path / "s.zarr")
    assert store.num_episodes == 0 and store.num_steps == 0 and store.summary()["episodes"] == 0
