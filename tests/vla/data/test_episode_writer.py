import numpy as np
import pytest
import zarr

from vla import keys
from vla.data import EpisodeStore, EpisodeWriter


def assert_episode_equal(got, want):
    assert sorted(got) == sorted(want)
    for key in want:
        assert got[key].dtype == want[key].dtype, key
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_round_trip(store_factory, episode_factory, env_spec):
    path = store_factory(5)
    store = EpisodeStore(path)
    assert store.num_episodes == 5 and store.env_spec == env_spec
    for i in range(5):
        episode, meta = episode_factory(i)
        assert_episode_equal(store.episode(i), episode)
        got = store.episode_meta(i)
        expected = {
            **meta,
            keys.SPLIT: "train",
            keys.SUCCESS: True,
            keys.LENGTH: len(episode[keys.ACTION]),
        }
        assert got == expected
    assert store.num_steps == int(store.episode_lengths.sum()) == store.episode_ends[-1]


def test_layout_is_diffusion_policy_compatible(store_factory):
    root = zarr.open_group(store_factory(3), mode="r")
    ends = root[f"{keys.META}/{keys.EPISODE_ENDS}"]
    assert ends.dtype == np.int64 and ends.shape == (3,)
    for key in (keys.IMAGE, keys.STATE, keys.ACTION):
        assert root[f"{keys.DATA}/{key}"].shape[0] == ends[-1]  # every array exactly as long
    image = root[f"{keys.DATA}/{keys.IMAGE}"]
    assert image.dtype == np.uint8 and "Zstd" in str(image.compressors[0])


def test_image_chunks_follow_frame_size(tmp_path, env_spec, episode_factory):
    with EpisodeWriter(tmp_path / "s.zarr", env_spec=env_spec, image_chunk_bytes=1000) as writer:
        writer.append(*episode_factory(0))
        chunks = writer._data[keys.IMAGE].chunks
    assert chunks[0] == 4 and chunks[1:] == (8, 8, 3)  # 1000 B // 192 B per frame -> 4 frames


def test_append_many_commits_together(tmp_path, env_spec, episode_factory):
    with EpisodeWriter(tmp_path / "s.zarr", env_spec=env_spec) as writer:
        assert writer.append_many([episode_factory(i) for i in range(3)]) == [0, 1, 2]
        assert writer.append(*episode_factory(3)) == 3
    store = EpisodeStore(tmp_path / "s.zarr")
    for i in range(4):
        assert_episode_equal(store.episode(i), episode_factory(i)[0])


def test_resume_appends_after_committed(store_factory, episode_factory, env_spec):
    path = store_factory(2)
    with EpisodeWriter.create_or_open(path, env_spec=env_spec) as writer:
        assert writer.num_episodes == 2
        while writer.num_episodes < 4:  # how a collector resumes to a requested count
            writer.append(*episode_factory(writer.num_episodes))
    store = EpisodeStore(path)
    assert store.num_episodes == 4
    for i in range(4):
        assert_episode_equal(store.episode(i), episode_factory(i)[0])


def test_reopen_drops_uncommitted_tail_and_partial_files(store_factory, episode_factory):
    path = store_factory(2)
    steps = EpisodeStore(path).num_steps
    root = zarr.open_group(path, mode="r+")  # what a writer killed mid-payload leaves behind
    action = root[f"{keys.DATA}/{keys.ACTION}"]
    action.resize((steps + 5, 4))
    action[steps:] = 7.0
    root[f"{keys.META}/{keys.TASK}"].resize((3,))
    stray = path / keys.DATA / keys.ACTION / "zarr.0123456789abcdef0123456789abcdef.partial"
    stray.write_bytes(b"half a file")
    assert EpisodeStore(path).num_episodes == 2  # readers ignore the tail already
    with EpisodeWriter(path) as writer:
        assert not stray.exists()
        assert writer._data[keys.ACTION].shape[0] == steps
        writer.append(*episode_factory(2))
    assert_episode_equal(EpisodeStore(path).episode(2), episode_factory(2)[0])


def test_second_writer_is_refused(store_factory):
    path = store_factory(1)
    with EpisodeWriter(path), pytest.raises(RuntimeError, match="another EpisodeWriter"):
        EpisodeWriter(path)
    EpisodeWriter(path).close()  # released on close


def test_create_needs_env_spec_and_reopen_checks_it(tmp_path, store_factory, env_spec):
    with pytest.raises(ValueError, match="env_spec is required"):
        EpisodeWriter(tmp_path / "new.zarr")
    path = store_factory(1)
    with pytest.raises(ValueError, match="differs from the store"):
        EpisodeWriter(path, env_spec={**env_spec, "control_hz": 20})
    with pytest.raises(ValueError, match="differ from the store's keys"):
        EpisodeWriter(path, keys=[keys.IMAGE, keys.ACTION])


def test_creates_inside_an_empty_folder(tmp_path, env_spec, episode_factory):
    (tmp_path / "empty.zarr").mkdir()
    with EpisodeWriter(tmp_path / "empty.zarr", env_spec=env_spec) as writer:
        writer.append(*episode_factory(0))
    assert EpisodeStore(tmp_path / "empty.zarr").num_episodes == 1


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda ep, m: ep.__setitem__(keys.ACTION, ep[keys.ACTION] * np.nan), "NaN/inf at step 0"),
        (
            lambda ep, m: ep.__setitem__(keys.IMAGE, ep[keys.IMAGE] / 255.0),
            "images are stored uint8",
        ),
        (
            lambda ep, m: ep.__setitem__(keys.STATE, ep[keys.STATE][:-1]),
            "every key needs one entry",
        ),
        (lambda ep, m: ep.pop(keys.STATE), "missing \\['state'\\]"),
        (lambda ep, m: ep.__setitem__(keys.IMAGE, np.zeros((3, 9, 9, 3), np.uint8)), "store holds"),
        (lambda ep, m: m.pop(keys.INSTRUCTION), "'instruction'.*non-empty str"),
        (lambda ep, m: m.__setitem__(keys.SUCCESS, "yes"), "'success'.*bool"),
        (lambda ep, m: m.__setitem__(keys.LENGTH, 999), "'length'"),
        (lambda ep, m: m.__setitem__("when", object()), "JSON-serializable"),
    ],
)
def test_bad_episode_is_rejected_before_writing(store_factory, episode_factory, change, match):
    path = store_factory(1)
    episode, meta = episode_factory(1, length=3)
    change(episode, meta)
    with EpisodeWriter(path) as writer, pytest.raises(ValueError, match=match):
        writer.append(episode, meta)
    store = EpisodeStore(path)
    assert store.num_episodes == 1
    assert_episode_equal(store.episode(0), episode_factory(0)[0])


def test_durable_mode_syncs_around_the_commit(tmp_path, env_spec, episode_factory, monkeypatch):
    calls = []
    monkeypatch.setattr("os.sync", lambda: calls.append(1))
    with EpisodeWriter(tmp_path / "s.zarr", env_spec=env_spec, durable=True) as writer:
        writer.append(*episode_factory(0))
    assert len(calls) == 2
    assert EpisodeStore(tmp_path / "s.zarr").num_episodes == 1
