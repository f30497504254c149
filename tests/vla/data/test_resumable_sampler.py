"""The training sampler: one endless stream of per-epoch permutations, resumable anywhere."""

from itertools import islice

import pytest

from vla.data.resumable_sampler import ResumableRandomSampler


def take(sampler: ResumableRandomSampler, n: int, start: int = 0, rank: int = 0, world: int = 1):
    return list(islice(sampler.stream(start, rank, world), n))


def test_every_epoch_visits_every_sample_once_in_a_new_order():
    sampler = ResumableRandomSampler(size=10, seed=3)
    stream = take(sampler, 40)
    epochs = [stream[i : i + 10] for i in range(0, 40, 10)]
    assert all(sorted(e) == list(range(10)) for e in epochs)
    assert len({tuple(e) for e in epochs}) == 4  # reshuffled each epoch
    assert take(ResumableRandomSampler(10, seed=4), 10) != epochs[0]  # the seed matters


@pytest.mark.parametrize("start", [0, 1, 7, 9, 10, 11, 29, 64])
def test_resuming_anywhere_continues_the_same_stream(start):
    sampler = ResumableRandomSampler(size=10, seed=0)
    whole = take(sampler, start + 25)
    sampler.resume_at(start)
    assert list(islice(iter(sampler), 25)) == whole[start:]  # no drift across epoch boundaries


def test_ranks_partition_each_global_batch():
    sampler = ResumableRandomSampler(size=7, seed=1)
    ranks = [take(sampler, 20, start=12, rank=r, world=3) for r in range(3)]
    interleaved = [ranks[i % 3][i // 3] for i in range(60)]
    assert interleaved == take(sampler, 72)[12:72]
    assert sampler.epoch_of(14) == 2.0


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="size=0"):
        ResumableRandomSampler(0)
    with pytest.raises(ValueError, match="samples_seen=-1"):
        ResumableRandomSampler(3).resume_at(-1)


def test_weighted_draws_follow_the_weights_and_resume_exactly():
    # samples 0-1 are one group, 2-9 another: weights give each group half of the draws
    weights = [4.0, 4.0] + [1.0] * 8
    sampler = ResumableRandomSampler(size=10, seed=2, weights=weights)
    stream = take(sampler, 20_000)
    share = sum(i < 2 for i in stream) / len(stream)
    assert abs(share - 0.5) < 0.02, share  # uniform permutations would give 0.2
    sampler.resume_at(1234)
    assert list(islice(iter(sampler), 50)) == stream[1234:1284]
    zero = take(ResumableRandomSampler(size=4, seed=0, weights=[1, 0, 1, 0]), 400)
    assert set(zero) == {0, 2}


@pytest.mark.parametrize(
    "weights", [[1.0, 2.0], [1.0, -1.0, 1.0], [0.0, 0.0, 0.0], [1, float("nan"), 1]]
)
def test_bad_weights_are_refused(weights):
    with pytest.raises(ValueError, match="weights must be 3 finite values"):
        ResumableRandomSampler(3, weights=weights)
