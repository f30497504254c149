"""Spoken instructions in the episode store: round trip, the all-or-none rules, crash safety,
version 1 stores, validation."""

import numpy as np
import pytest
import zarr

from vla import keys
from vla.data import EpisodeStore, EpisodeWriter, InvalidStoreError
from vla.data.store_format import AUDIO_SCALE

RATE = 16000
QUANTUM = 0.5 / AUDIO_SCALE  # int16 rounding error bound
AUDIO = f"{keys.META}/{keys.AUDIO}"
AUDIO_ENDS = f"{keys.META}/{keys.AUDIO_ENDS}"


def wave(index: int) -> np.ndarray:
    """A clip of 300 + 71 * index samples: a tone plus noise, touching -1 and 1 exactly."""
    rng = np.random.default_rng(100 + index)
    n = 300 + 71 * index
    x = 0.6 * np.sin(np.arange(n) * (0.05 + 0.01 * index)) + 0.1 * rng.standard_normal(n)
    x[:2] = [-1.0, 1.0]
    return x.astype(np.float32)  # (n,)


def spoken(episode_factory, index: int, rate: int = RATE):
    episode, meta = episode_factory(index)
    return episode, {**meta, keys.AUDIO: wave(index), keys.AUDIO_SAMPLE_RATE: rate}


@pytest.fixture
def audio_store(tmp_path, env_spec, episode_factory):
    def build(n: int, name: str = "a.zarr"):
        path = tmp_path / name
        with EpisodeWriter(path, env_spec=env_spec) as writer:
            for i in range(n):
                writer.append(*spoken(episode_factory, i))
        return path

    return build


def assert_audio(store: EpisodeStore, count: int) -> None:
    assert store.has_audio and store.audio_sample_rate == RATE
    assert store.audio_ends.tolist() == np.cumsum([len(wave(i)) for i in range(count)]).tolist()
    for i in range(count):
        got = store.audio(i)
        assert got.dtype == np.float32 and got.shape == wave(i).shape
        np.testing.assert_allclose(got, wave(i), rtol=0, atol=QUANTUM)
        assert got[0] == -1.0 and got[1] == 1.0  # full scale survives the round trip
        assert store.audio_pcm(i).dtype == np.int16


def test_round_trip_keeps_waveforms_boundaries_and_rate(audio_store, episode_factory):
    store = EpisodeStore(audio_store(4))
    assert store.format_version == 2
    assert_audio(store, 4)
    episode, meta = episode_factory(2)
    got = store.episode_meta(2)
    assert keys.AUDIO not in got and keys.AUDIO_SAMPLE_RATE not in got  # no waveform dump
    assert got[keys.INSTRUCTION] == meta[keys.INSTRUCTION] and got["difficulty"] == 2
    for key, value in episode.items():  # the rest of the episode is untouched
        np.testing.assert_array_equal(store.episode(2)[key], value)
    info = store.summary()["audio"]
    samples = sum(len(wave(i)) for i in range(4))
    assert info["sample_rate"] == RATE and info["seconds"] == pytest.approx(samples / RATE)
    assert info["mean_seconds"] == pytest.approx(samples / RATE / 4)
    assert info["disk_bytes"] > 0 and info["bytes_per_second"] > 0


def test_append_many_and_resume_with_audio(tmp_path, env_spec, episode_factory):
    path = tmp_path / "a.zarr"
    with EpisodeWriter(path, env_spec=env_spec) as writer:
        assert writer.append_many([spoken(episode_factory, i) for i in range(3)]) == [0, 1, 2]
    with EpisodeWriter(path) as writer:
        assert writer.has_audio and writer.num_audio_samples == sum(len(wave(i)) for i in range(3))
        writer.append(*spoken(episode_factory, 3))
    assert_audio(EpisodeStore(path), 4)


def test_out_of_range_samples_are_clipped(tmp_path, env_spec, episode_factory):
    episode, meta = episode_factory(0)
    loud = np.array([-3.0, -1.0, 0.25, 1.0, 2.5])
    with EpisodeWriter(tmp_path / "a.zarr", env_spec=env_spec) as writer:
        writer.append(episode, {**meta, keys.AUDIO: loud, keys.AUDIO_SAMPLE_RATE: RATE})
    got = EpisodeStore(tmp_path / "a.zarr").audio(0)
    np.testing.assert_allclose(got, [-1, -1, 0.25, 1, 1], atol=QUANTUM)


def test_a_store_without_audio_reports_none(store_factory):
    store = EpisodeStore(store_factory(2))
    assert not store.has_audio and store.audio_sample_rate is None and store.audio_ends is None
    assert store.summary()["audio"] is None
    with pytest.raises(KeyError, match="holds no audio.*speech=true"):
        store.audio(0)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda m: m.pop(keys.AUDIO_SAMPLE_RATE), "needs meta\\['audio_sample_rate'\\]"),
        (lambda m: m.pop(keys.AUDIO), "without meta\\['audio'\\]"),
        (lambda m: m.__setitem__(keys.AUDIO, np.zeros(0, np.float32)), "is empty"),
        (lambda m: m.__setitem__(keys.AUDIO, np.zeros((2, 5))), "float mono waveform"),
        (lambda m: m.__setitem__(keys.AUDIO, np.zeros(5, np.int16)), "x / 32767"),
        (lambda m: m.__setitem__(keys.AUDIO, np.full(5, np.nan)), "NaN/inf at sample 0"),
        (lambda m: m.__setitem__(keys.AUDIO_SAMPLE_RATE, 16000.0), "must be an int"),
    ],
)
def test_bad_audio_is_rejected_and_decides_nothing(
    tmp_path, env_spec, episode_factory, change, match
):
    path = tmp_path / "a.zarr"
    episode, meta = spoken(episode_factory, 0)
    change(meta)
    with EpisodeWriter(path, env_spec=env_spec) as writer:
        with pytest.raises(ValueError, match=match):
            writer.append(episode, meta)
        assert not writer.has_audio  # a refused first episode does not decide for the store
        writer.append(*episode_factory(0))  # so one without audio still goes in
    assert not EpisodeStore(path).has_audio


def test_audio_in_every_episode_or_none(audio_store, store_factory, episode_factory):
    path = audio_store(2)
    with EpisodeWriter(path) as writer:
        with pytest.raises(ValueError, match="holds a spoken instruction for every episode"):
            writer.append(*episode_factory(2))
        with pytest.raises(
            ValueError, match="audio_sample_rate.\\]=8000 differs.*=16000.*resample"
        ):
            writer.append(*spoken(episode_factory, 2, rate=8000))
        with pytest.raises(ValueError, match="holds a spoken instruction"):  # all or none
            writer.append_many([spoken(episode_factory, 2), episode_factory(3)])
    assert_audio(EpisodeStore(path), 2)

    plain = store_factory(2)
    with EpisodeWriter(plain) as writer, pytest.raises(ValueError, match="2 episodes without"):
        writer.append(*spoken(episode_factory, 2))
    assert not EpisodeStore(plain).has_audio and EpisodeStore(plain).num_episodes == 2


def test_reopen_truncates_uncommitted_audio(audio_store, episode_factory):
    path = audio_store(2)
    committed = int(EpisodeStore(path).audio_ends[-1])
    root = zarr.open_group(path, mode="r+")  # what a writer killed after the payload leaves
    audio, ends = root[AUDIO], root[AUDIO_ENDS]
    audio.resize((committed + 500,))
    audio[committed:] = 1234
    ends.resize((3,))
    ends[2] = committed + 500
    assert_audio(EpisodeStore(path), 2)  # readers ignore the tail already
    with EpisodeWriter(path) as writer:
        assert root[AUDIO].shape == (committed,) == (writer.num_audio_samples,)
        assert root[AUDIO_ENDS].shape == (2,)
        writer.append(*spoken(episode_factory, 2))
    assert_audio(EpisodeStore(path), 3)


def test_an_uncommitted_first_episode_leaves_no_audio_decision(tmp_path, env_spec, episode_factory):
    path = tmp_path / "a.zarr"
    with EpisodeWriter(path, env_spec=env_spec) as writer:
        writer.append(*spoken(episode_factory, 0))
    root = zarr.open_group(path, mode="r+")  # as if the commit of episode 0 never happened
    root[f"{keys.META}/{keys.EPISODE_ENDS}"].resize((0,))
    assert EpisodeStore(path).num_episodes == 0
    with EpisodeWriter(path) as writer:
        assert not writer.has_audio
        writer.append(*episode_factory(0))  # the store may now go without audio
    store = EpisodeStore(path)
    assert not store.has_audio and not (path / keys.META / keys.AUDIO).exists()


def test_version_1_stores_read_and_append_without_audio(store_factory, env_spec, episode_factory):
    path = store_factory(2)
    zarr.open_group(path, mode="r+").attrs["format_version"] = 1  # the version 1 layout exactly
    store = EpisodeStore(path)
    assert store.format_version == 1 and not store.has_audio and store.num_episodes == 2
    with EpisodeWriter(path) as writer:
        writer.append(*episode_factory(2))
        with pytest.raises(ValueError, match="without audio.*use a new path"):
            writer.append(*spoken(episode_factory, 3))
    store = EpisodeStore(path)
    assert store.format_version == 1 and store.num_episodes == 3  # still a valid version 1 store

    empty = path.parent / "empty.zarr"
    EpisodeWriter(empty, env_spec=env_spec).close()
    zarr.open_group(empty, mode="r+").attrs["format_version"] = 1
    with EpisodeWriter(empty) as writer:
        writer.append(*spoken(episode_factory, 0))
    assert EpisodeStore(empty).format_version == 2  # audio needs version 2
    assert_audio(EpisodeStore(empty), 1)


def set_attr(name, value):
    return lambda root: root.attrs.__setitem__(name, value)


def shorten_audio(root):
    root[AUDIO].resize((root[AUDIO].shape[0] - 10,))


def float_ends(root):
    values = root[AUDIO_ENDS][:]
    del root[AUDIO_ENDS]
    root.create_array(AUDIO_ENDS, data=values.astype(np.float64))


def unordered_audio_ends(root):
    root[AUDIO_ENDS][2] = root[AUDIO_ENDS][1]


@pytest.mark.parametrize(
    "corrupt, match",
    [
        (
            shorten_audio,
            "'meta/audio' has \\d+ samples but 'meta/audio_ends' says \\d+ \\(episode 2",
        ),
        (lambda root: root[AUDIO_ENDS].resize((2,)), "'meta/audio_ends' has 2 entries.*3 episodes"),
        (float_ends, "'meta/audio_ends' has dtype float64, expected int64"),
        (unordered_audio_ends, "episode 2 ends at \\d+ <= the end of episode 1.*audio_ends"),
        (lambda root: root.__delitem__(AUDIO), "array 'meta/audio' is missing"),
        (set_attr(keys.AUDIO_SAMPLE_RATE, "16k"), "audio_sample_rate='16k' must be a positive int"),
        (set_attr("format_version", 1), "audio_sample_rate=16000 is set but format_version=1"),
    ],
)
def test_bad_audio_store_raises_named_error(audio_store, corrupt, match):
    path = audio_store(3)
    corrupt(zarr.open_group(path, mode="r+"))
    with pytest.raises(InvalidStoreError, match=match) as info:
        EpisodeStore(path)
    assert str(path) in str(info.value)
