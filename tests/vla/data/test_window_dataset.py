import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vla import keys
from vla.data import EpisodeSplit, EpisodeStore, WindowDataset, collate_windows

WRIST = keys.IMAGE + "_wrist"


def first_sample_of(dataset, episode):
    return int(np.flatnonzero(dataset._episode == episode)[0])


@pytest.mark.parametrize("cache", [True, False])
def test_window_padding_at_both_episode_edges(store_factory, cache):
    path = store_factory(3, lengths=[4, 5, 6])
    ds = WindowDataset(path, obs_horizon=3, action_horizon=4, split="all", cache=cache)
    store = EpisodeStore(path)
    assert len(ds) == 15
    frames = store.read(keys.IMAGE)
    i0 = first_sample_of(ds, 1)  # episode 1 = global steps 4..8; state/action[:, 0] = local step

    start = ds[i0]  # t = 0: the first observation repeated twice before it
    assert start[keys.STATE][:, 0].tolist() == [0, 0, 0]
    np.testing.assert_array_equal(start[keys.IMAGE][:, 0].permute(0, 2, 3, 1), frames[[4, 4, 4]])
    assert start[keys.ACTION][:, 0].tolist() == [0, 1, 2, 3]
    assert start[keys.ACTION_MASK].tolist() == [True] * 4

    middle = ds[i0 + 2]
    assert middle[keys.STATE][:, 0].tolist() == [0, 1, 2]
    np.testing.assert_array_equal(middle[keys.IMAGE][:, 0].permute(0, 2, 3, 1), frames[[4, 5, 6]])

    end = ds[i0 + 4]  # t = 4, the last step: the last action repeated, masked out
    assert end[keys.STATE][:, 0].tolist() == [2, 3, 4]
    assert end[keys.ACTION][:, 0].tolist() == [4, 4, 4, 4]
    assert end[keys.ACTION_MASK].tolist() == [True, False, False, False]
    np.testing.assert_array_equal(end[keys.ACTION][1], store.read(keys.ACTION)[8])
    # every window of the episode holds where it ended: the state of its last step (global 8)
    for sample in (start, middle, end):
        np.testing.assert_array_equal(sample[keys.GOAL], store.read(keys.STATE)[8])


@pytest.mark.parametrize("cache", [True, False])
def test_start_history_keeps_the_first_frame(store_factory, cache):
    path = store_factory(2, lengths=[4, 6])
    ds = WindowDataset(path, obs_horizon=3, split="all", cache=cache, history="start")
    frames = EpisodeStore(path).read(keys.IMAGE)
    i0 = first_sample_of(ds, 1)  # episode 1 = global steps 4..9
    steps = [ds[i0 + t][keys.STATE][:, 0].tolist() for t in range(6)]  # local step per frame
    assert steps == [[0, 0, 0], [0, 0, 1], [0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 5]]
    last = ds[i0 + 5][keys.IMAGE][:, 0].permute(0, 2, 3, 1)  # (T, H, W, 3)
    np.testing.assert_array_equal(last, frames[[4, 8, 9]])


def test_sample_contract(store_factory):
    ds = WindowDataset(
        store_factory(2),
        obs_horizon=2,
        action_horizon=3,
        image_keys=[keys.IMAGE, WRIST],
        split="all",
    )
    sample = ds[0]
    assert sample[keys.IMAGE].shape == (2, 2, 3, 8, 8) and sample[keys.IMAGE].dtype == torch.uint8
    assert sample[keys.STATE].shape == (2, 7) and sample[keys.STATE].dtype == torch.float32
    assert sample[keys.ACTION].shape == (3, 4) and sample[keys.ACTION].dtype == torch.float32
    assert sample[keys.ACTION_MASK].dtype == torch.bool
    assert sample[keys.INSTRUCTION] == "touch the block 0" and sample[keys.TASK] == "vla/Push-v0"
    wrist = EpisodeStore(ds.path).read(WRIST)[0]
    np.testing.assert_array_equal(sample[keys.IMAGE][1, 1].permute(1, 2, 0), wrist)

    no_state = WindowDataset(ds.path, image_keys=[], state_key=None, split="all")[0]
    assert keys.IMAGE not in no_state and keys.STATE not in no_state


def test_cache_and_store_reads_agree(store_factory):
    path = store_factory(4)
    cached = WindowDataset(path, obs_horizon=2, split="val", val_fraction=0.5, cache=True)
    lazy = WindowDataset(path, obs_horizon=2, split="val", val_fraction=0.5, cache=False)
    for i in range(len(cached)):
        torch.testing.assert_close(cached[i][keys.IMAGE], lazy[i][keys.IMAGE])


@pytest.mark.parametrize(
    "options",
    [
        {"obs_horizon": 1},
        {"obs_horizon": 3, "image_keys": [keys.IMAGE, WRIST]},
        {"obs_horizon": 3, "history": "start", "state_key": None},
        {"obs_horizon": 2, "cache": False},  # frames read from the store: sample by sample
    ],
)
def test_a_batch_at_once_equals_its_samples_collated(store_factory, options):
    options = {"cache": True, "action_horizon": 4, **options}
    ds = WindowDataset(store_factory(4, lengths=[2, 5, 3, 6]), split="all", **options)
    indices = np.random.default_rng(0).integers(0, len(ds), 9).tolist()
    one_by_one = collate_windows([ds[i] for i in indices])
    loader = DataLoader(ds, batch_size=9, sampler=indices, collate_fn=collate_windows)
    for batched in (ds.__getitems__(indices), next(iter(loader))):
        assert batched.keys() == one_by_one.keys()
        for key, value in one_by_one.items():
            if isinstance(value, torch.Tensor):
                assert batched[key].dtype == value.dtype and batched[key].is_contiguous()
                torch.testing.assert_close(batched[key], value, rtol=0, atol=0)
            else:
                assert batched[key] == value


def test_a_camera_read_twice_is_cached_once(store_factory):
    path = store_factory(2)
    twice = WindowDataset(path, image_keys=[keys.IMAGE, keys.IMAGE], split="all", cache=True)
    assert list(twice._frames) == [keys.IMAGE]
    image = twice[0][keys.IMAGE]  # (T, V, 3, H, W): the one camera in both views
    assert image.shape[1] == 2
    torch.testing.assert_close(image[:, 0], image[:, 1])


def test_loader_with_workers_collates_strings_as_lists(store_factory):
    ds = WindowDataset(store_factory(3), split="all")  # not cached: each worker opens the store
    loader = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=collate_windows)
    batches = list(loader)
    assert sum(len(b[keys.INSTRUCTION]) for b in batches) == len(ds)
    batch = batches[0]
    assert batch[keys.IMAGE].shape == (4, 1, 1, 3, 8, 8) and batch[keys.ACTION_MASK].shape == (4, 8)
    assert isinstance(batch[keys.INSTRUCTION], list) and isinstance(batch[keys.TASK][0], str)


def test_split_has_no_leakage_and_is_seeded():
    labels = ["train"] * 20 + ["val", "test"]
    a = EpisodeSplit.from_labels(labels, val_fraction=0.25, seed=0)
    assert len(a.val) == 5 + 1 and len(a.train) == 15
    assert not set(a.train) & set(a.val)
    assert 20 in a.val and 21 not in np.concatenate([a.train, a.val])  # fixed labels respected
    b = EpisodeSplit.from_labels(labels, val_fraction=0.25, seed=0)
    c = EpisodeSplit.from_labels(labels, val_fraction=0.25, seed=1)
    assert a.val.tolist() == b.val.tolist() and a.val.tolist() != c.val.tolist()
    assert len(EpisodeSplit.from_labels(["train"] * 3, 0.01, 0).val) == 1  # never empty when asked
    assert len(EpisodeSplit.from_labels(["train"] * 3, 0.0, 0).val) == 0
    with pytest.raises(ValueError, match="val_fraction=1.0"):
        EpisodeSplit.from_labels(labels, 1.0, 0)


def test_dataset_split_windows_stay_in_their_episodes(store_factory):
    path = store_factory(10)
    train = WindowDataset(path, split="train", val_fraction=0.3, split_seed=3)
    val = WindowDataset(path, split="val", val_fraction=0.3, split_seed=3)
    assert not set(train._episode) & set(val._episode)
    assert len(train) + len(val) == EpisodeStore(path).num_steps
    val_instructions = {val[i][keys.INSTRUCTION] for i in range(len(val))}
    assert val_instructions == {f"touch the block {e}" for e in val.episodes}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"obs_horizon": 0}, "obs_horizon=0"),
        ({"history": "start"}, "needs obs_horizon >= 2"),
        ({"history": "all", "obs_horizon": 2}, "history='all'"),
        ({"split": "dev"}, "split='dev'"),
        ({"image_keys": ["image_top"]}, "key 'image_top' is not in"),
        ({"image_keys": [keys.STATE]}, "not a camera key"),
        ({"image_keys": keys.IMAGE}, "must be a list"),
    ],
)
def test_bad_arguments(store_factory, kwargs, match):
    with pytest.raises(ValueError, match=match):
        WindowDataset(store_factory(1), **kwargs)


@pytest.mark.parametrize("cache", [True, False])
def test_audio_samples_carry_their_episodes_clip(store_factory, cache):
    path = store_factory(5, lengths=[3, 4, 5, 3, 4], audio=True)
    store = EpisodeStore(path)
    for split in ("train", "val"):
        ds = WindowDataset(path, split=split, val_fraction=0.4, cache=cache, audio=True)
        assert ds.audio_sample_rate == 16000 and len(ds.episodes) in (2, 3)
        for i in range(len(ds)):
            clip = ds[i][keys.AUDIO]
            episode = int(ds._episode[i])
            assert clip.dtype == torch.float32 and clip.shape == (200 + 37 * episode,)
            torch.testing.assert_close(clip, torch.from_numpy(store.audio(episode)), rtol=0, atol=0)
    assert keys.AUDIO not in WindowDataset(path, split="all")[0]  # audio is opt-in


@pytest.mark.parametrize("cache", [True, False])
def test_collate_pads_audio_and_reports_lengths(store_factory, cache):
    path = store_factory(3, lengths=[2, 2, 2], audio=True)
    ds = WindowDataset(path, split="all", cache=cache, audio=True)
    loader = DataLoader(ds, batch_size=6, num_workers=0 if cache else 2, collate_fn=collate_windows)
    batch = next(iter(loader))
    assert batch[keys.AUDIO_LENGTH].tolist() == [200, 200, 237, 237, 274, 274]
    assert batch[keys.AUDIO_LENGTH].dtype == torch.int64
    assert batch[keys.AUDIO].shape == (6, 274) and batch[keys.AUDIO].dtype == torch.float32
    store = EpisodeStore(path)
    for row, length in enumerate(batch[keys.AUDIO_LENGTH].tolist()):
        np.testing.assert_array_equal(batch[keys.AUDIO][row, :length], store.audio(row // 2))
        assert not batch[keys.AUDIO][row, length:].any()  # zero padding past the clip
    assert batch[keys.ACTION].shape == (6, 8, 4)  # the rest collates as before


def test_audio_needs_a_store_with_speech(store_factory):
    with pytest.raises(ValueError, match="holds no spoken instructions.*vla-collect .*speech=true"):
        WindowDataset(store_factory(2), audio=True)
    assert WindowDataset(store_factory(2, name="plain.zarr")).audio_sample_rate is None


def test_transcribe_fraction_asks_what_was_said(store_factory):
    from vla.data.window_dataset import TRANSCRIBE_QUESTION

    path = store_factory(4, lengths=[5, 5, 5, 5], audio=True)
    ds = WindowDataset(path, split="all", audio=True, transcribe_fraction=0.5)
    asked = [ds[i] for i in range(len(ds)) if ds[i][keys.ANSWER] is not None]
    assert 0 < len(asked) < len(ds)  # about half: a fixed draw per index
    for sample in asked:
        assert sample[keys.QUESTION] == TRANSCRIBE_QUESTION
        assert sample[keys.ANSWER] == sample[keys.INSTRUCTION]  # the answer is what was said
    with pytest.raises(ValueError, match="needs audio=true"):
        WindowDataset(path, split="all", transcribe_fraction=0.5)
    with pytest.raises(ValueError, match="sum <= 1"):
        WindowDataset(path, split="all", audio=True, transcribe_fraction=1.5)
