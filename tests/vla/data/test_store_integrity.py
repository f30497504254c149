"""Damaged chunks: a deleted chunk file must not read back as zeros, a junk one must be named."""

import os
import warnings

import numpy as np
import pytest
import zarr

from vla import keys
from vla.data import (
    EpisodeDataModule,
    EpisodeStore,
    EpisodeWriter,
    InvalidStoreError,
    NormalizationStats,
    WindowDataset,
)
from vla.data.store_format import ATTR_ALL_CHUNKS

SMALL = dict(lowdim_chunk_steps=8, image_chunk_bytes=8 * 8 * 3 * 4)  # 8 steps, 4 frames a chunk
LENGTHS = [8, 5, 8, 7, 7, 7]  # episode ends 8 13 21 28 35 42
ACTION, IMAGE = f"{keys.DATA}/{keys.ACTION}", f"{keys.DATA}/{keys.IMAGE}"
AUDIO = f"{keys.META}/{keys.AUDIO}"
FIX = "restore the store from a backup or re-collect it"


@pytest.fixture
def store(store_factory):
    """Six episodes with audio, small chunks, so a chunk maps to a few episodes."""
    return store_factory(6, lengths=LENGTHS, audio=True, **SMALL)


def chunk_file(path, name, index):
    """The file of chunk ``index`` (along time) of array ``name``."""
    array = zarr.open_array(path / name, mode="r")
    return path / name / array.metadata.encode_chunk_key((index, *[0] * (array.ndim - 1)))


def junk(path, name, index):
    chunk_file(path, name, index).write_bytes(np.random.default_rng(0).bytes(64))


def one_line(err: InvalidStoreError) -> bool:
    """A message a user reads: one line, no chained numcodecs traceback behind it."""
    return "\n" not in str(err) and err.__cause__ is None and err.__context__ is None


MISSING = [
    (ACTION, 1, "steps 8-15: episodes 1-2"),
    (IMAGE, 3, "steps 12-15: episodes 1-2"),
    (f"{IMAGE}_wrist", 10, "steps 40-41: episode 5"),  # the last chunk, cut to what is committed
    (f"{keys.DATA}/{keys.STATE}", 0, "steps 0-7: episode 0"),
    *[
        (f"{keys.META}/{name}", 0, "episodes 0-5")
        for name in (keys.EPISODE_ENDS, keys.INSTRUCTION, keys.TASK, keys.SEED, keys.EXTRA)
    ],
    (f"{keys.META}/{keys.SUCCESS}", 0, "episodes 0-5"),
    (f"{keys.META}/{keys.AUDIO_ENDS}", 0, "episodes 0-5"),
    (AUDIO, 0, f"samples 0-{sum(200 + 37 * i for i in range(6)) - 1}: episodes 0-5"),
]


@pytest.mark.parametrize("name, index, span", MISSING)
def test_a_missing_chunk_refuses_the_store(store, name, index, span):
    EpisodeStore(store)  # valid before
    chunk_file(store, name, index).unlink()
    for check_values in (True, False):  # training opens with check_values=False
        with pytest.raises(InvalidStoreError) as info:
            EpisodeStore(store, check_values=check_values)
        message = str(info.value)
        assert f"array '{name}' is missing chunk {index} ({span})" in message
        assert message.startswith(str(store)) and FIX in message and one_line(info.value)


def test_every_damaged_array_is_named_at_once(store):
    for name, index in ((ACTION, 1), (IMAGE, 3), (IMAGE, 5), (f"{keys.META}/{keys.TASK}", 0)):
        chunk_file(store, name, index).unlink()
    with pytest.raises(InvalidStoreError) as info:
        EpisodeStore(store)
    message = str(info.value)
    assert "array 'data/image' is missing chunks 3 (steps 12-15: episodes 1-2), 5 (" in message
    assert "array 'data/action' is missing chunk 1" in message and "'meta/task'" in message


def test_an_empty_chunk_file_refuses_the_store(store):
    chunk_file(store, ACTION, 2).write_bytes(b"")
    with pytest.raises(InvalidStoreError, match=r"'data/action' has an empty \(0-byte\) chunk 2 "):
        EpisodeStore(store)


def test_training_writing_and_opening_without_the_check(store):
    chunk_file(store, ACTION, 0).unlink()
    with pytest.raises(InvalidStoreError, match="'data/action' is missing chunk 0"):
        WindowDataset(store)
    with pytest.raises(InvalidStoreError, match="'data/action' is missing chunk 0"):
        EpisodeDataModule(str(store)).normalization_stats  # noqa: B018
    with pytest.raises(InvalidStoreError, match="'data/action' is missing chunk 0"):
        EpisodeWriter.create_or_open(store)  # an append would seal the zeros in
    loose = EpisodeStore(store, check_chunks=False)  # opting out: what zarr reads is zeros
    assert not loose.read(keys.ACTION, 0, 8).any()


def test_chunks_past_the_commit_may_be_absent(store):
    """A writer killed mid-append leaves steps past episode_ends: not part of the store."""
    action = zarr.open_array(store / ACTION, mode="r+")
    action.resize((60, 4))
    action[42:60] = 1.0  # chunks 5 (partly), 6 and 7 hold uncommitted steps
    for index in (6, 7):
        chunk_file(store, ACTION, index).unlink()
    assert EpisodeStore(store).num_steps == 42


def zero_episode(length: int):
    episode = {
        keys.IMAGE: np.zeros((length, 8, 8, 3), np.uint8),  # black frames
        keys.IMAGE + "_wrist": np.zeros((length, 8, 8, 3), np.uint8),
        keys.STATE: np.zeros((length, 7), np.float32),
        keys.ACTION: np.zeros((length, 4), np.float32),
    }
    meta = {
        keys.INSTRUCTION: "wait",
        keys.TASK: "vla/Wait-v0",
        keys.SEED: 0,  # every value of these chunks equals zarr's fill value
        keys.SUCCESS: False,
        keys.AUDIO: np.zeros(300, np.float32),  # silence
        keys.AUDIO_SAMPLE_RATE: 16000,
    }
    return episode, meta


def test_all_zero_episodes_are_stored_whole(tmp_path, env_spec):
    """zarr skips chunks equal to the fill value by default; the writer must not, or a silent,
    motionless episode would look damaged."""
    path = tmp_path / "zeros.zarr"
    with EpisodeWriter.create_or_open(path, env_spec=env_spec, **SMALL) as writer:
        writer.append(*zero_episode(10))
    assert EpisodeStore(path).num_episodes == 1
    for name in (ACTION, IMAGE, AUDIO, f"{keys.META}/{keys.SEED}", f"{keys.META}/{keys.SUCCESS}"):
        assert chunk_file(path, name, 0).is_file(), name
    with EpisodeWriter.create_or_open(path) as writer:  # reopened handles write every chunk too
        writer.append_many([zero_episode(5), zero_episode(9)])
    store = EpisodeStore(path)
    assert store.num_episodes == 3 and store.num_steps == 24
    assert not store.read(keys.ACTION).any() and not store.read(keys.IMAGE).any()
    assert not store.read_audio_pcm().any() and not store.successes.any()
    assert zarr.open_group(path, mode="r").attrs[ATTR_ALL_CHUNKS] is True


def test_an_older_store_only_warns_where_fill_values_are_ordinary(store):
    root = zarr.open_group(store, mode="r+")
    attrs = root.attrs.asdict()
    del attrs[ATTR_ALL_CHUNKS]  # as written before the writer stored every chunk
    root.attrs.put(attrs)
    chunk_file(store, f"{keys.META}/{keys.SEED}", 0).unlink()  # all seeds 0 would not be written
    with pytest.warns(UserWarning, match="'meta/seed' is missing chunk 0 .*may hold only zeros"):
        EpisodeStore(store)
    chunk_file(store, ACTION, 1).unlink()  # 8 steps of exactly zero actions: damage
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InvalidStoreError, match="'data/action' is missing chunk 1"):
            EpisodeStore(store)


def test_a_junk_action_chunk_is_named_on_every_read(store):
    junk(store, ACTION, 1)
    expected = (
        "array 'data/action' chunk 1 (steps 8-15: episodes 1-2) cannot be read (RuntimeError: "
    )
    with pytest.raises(InvalidStoreError) as info:
        EpisodeStore(store)  # check_values reads the actions
    assert expected in str(info.value) and "data/action/c/1/0 is damaged" in str(info.value)
    assert str(info.value).startswith(str(store)) and FIX in str(info.value)
    assert one_line(info.value)
    opened = EpisodeStore(store, check_values=False)  # listing finds nothing wrong
    assert opened.read(keys.ACTION, 0, 8).shape == (8, 4)  # chunk 0 is fine
    for read in (
        lambda: opened.read(keys.ACTION),
        lambda: opened.episode(2),
        lambda: NormalizationStats.from_store(opened, np.arange(6)),
        lambda: WindowDataset(store),
    ):
        with pytest.raises(InvalidStoreError) as info:
            read()
        assert expected in str(info.value) and one_line(info.value)


def test_a_junk_image_chunk_is_named_in_training_reads(store):
    junk(store, IMAGE, 3)
    expected = "array 'data/image' chunk 3 (steps 12-15: episodes 1-2) cannot be read"
    with pytest.raises(InvalidStoreError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        WindowDataset(store, split="all", cache=True)  # the cache load
    with pytest.raises(InvalidStoreError, match="'data/image' chunk 3"):
        EpisodeStore(store).read(keys.IMAGE, progress=True)
    lazy = WindowDataset(store, split="all", obs_horizon=2)
    assert lazy[0][keys.IMAGE].shape == (2, 1, 3, 8, 8)  # step 0: chunk 0 is fine
    with pytest.raises(InvalidStoreError) as info:
        lazy[int(np.flatnonzero(lazy._step == 13)[0])]  # frames 12 and 13: chunk 3
    assert expected in str(info.value) and one_line(info.value)


def test_a_junk_audio_chunk_is_named(store):
    junk(store, AUDIO, 0)
    store_view = EpisodeStore(store)  # opening reads audio_ends, not the samples
    with pytest.raises(InvalidStoreError, match="array 'meta/audio' chunk 0 \\(samples 0-"):
        store_view.audio(2)
    with pytest.raises(InvalidStoreError, match="'meta/audio' chunk 0"):
        WindowDataset(store, audio=True, split="all")[0]
    with pytest.raises(InvalidStoreError, match="'meta/audio' chunk 0"):
        WindowDataset(store, audio=True, split="all", cache=True)


@pytest.mark.parametrize("column", [keys.EPISODE_ENDS, keys.EXTRA, keys.AUDIO_ENDS])
def test_a_junk_meta_chunk_is_named_on_open(store, column):
    junk(store, f"{keys.META}/{column}", 0)
    with pytest.raises(InvalidStoreError) as info:
        EpisodeStore(store, check_values=False)
    assert f"array 'meta/{column}' chunk 0 (episodes 0-5) cannot be read" in str(info.value)
    assert one_line(info.value)


def test_verify_decodes_every_committed_chunk(store):
    count = EpisodeStore(store).verify()
    assert count == 6 + 11 + 11 + 6 + 6 + 1 + 1 + 1  # action state images, 6 columns, ends, audio
    junk(store, IMAGE, 7)
    junk(store, f"{IMAGE}_wrist", 0)
    opened = EpisodeStore(store)  # the listing is whole: only decoding finds junk
    with pytest.raises(InvalidStoreError) as info:
        opened.verify()
    message = str(info.value)
    assert "'data/image' chunk 7 (steps 28-31: episode 4)" in message
    assert "'data/image_wrist' chunk 0 (steps 0-3: episode 0)" in message and one_line(info.value)


def test_stats_cache_follows_the_data(store):
    opened = EpisodeStore(store)
    first = NormalizationStats.from_store(opened, np.arange(6))
    cached = NormalizationStats.from_store(opened, np.arange(6))
    np.testing.assert_array_equal(cached[keys.ACTION].max, first[keys.ACTION].max)
    action = zarr.open_array(store / ACTION, mode="r+")
    action[0:8] = action[0:8] * 3 + 5  # same shape, new values in chunk 0
    reopened = EpisodeStore(store)
    second = NormalizationStats.from_store(reopened, np.arange(6))
    fresh = NormalizationStats.compute(reopened.read(keys.ACTION))
    np.testing.assert_array_equal(second[keys.ACTION].max, fresh.max)
    assert not np.array_equal(second[keys.ACTION].max, first[keys.ACTION].max)
    np.testing.assert_array_equal(second[keys.STATE].mean, first[keys.STATE].mean)  # untouched
    entries = zarr.open_group(store / keys.STATS, mode="r").attrs.asdict()
    assert len(entries) == 2 and all(key.startswith("v2-") for key in entries)
    os.utime(chunk_file(store, ACTION, 3), ns=(1, 1))  # a replaced file (a restore): new key
    NormalizationStats.from_store(reopened, np.arange(6))
    assert len(zarr.open_group(store / keys.STATS, mode="r").attrs.asdict()) == 3


def test_stats_cache_keeps_only_recent_entries(store):
    opened = EpisodeStore(store)
    action = zarr.open_array(store / ACTION, mode="r+")
    for i in range(12):
        action[0] = i  # each rewrite: a new content key
        NormalizationStats.from_store(opened, np.arange(6))
    assert len(zarr.open_group(store / keys.STATS, mode="r").attrs.asdict()) == 8
