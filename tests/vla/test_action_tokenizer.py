import pytest
import torch

from vla.action_tokenizer import ActionTokenizer, action_token_names


def make(n_bins: int = 256) -> ActionTokenizer:
    return ActionTokenizer(low=[-1.0, 0.0, -0.5, 10.0], high=[1.0, 0.5, 0.5, 20.0], n_bins=n_bins)


def test_round_trip_error_is_at_most_half_a_bin() -> None:
    tok = make()
    g = torch.Generator().manual_seed(0)
    a = tok.low + torch.rand(10_000, 4, generator=g) * (tok.high - tok.low)  # (N, 4) in range
    err = (tok.decode(tok.encode(a)) - a).abs()  # (N, 4)
    assert (err <= tok.bin_width / 2 + 1e-5).all()
    assert err.max() > tok.bin_width.min() / 4  # really quantized, not an identity


def test_bin_edges() -> None:
    tok = make(n_bins=4)  # dim 0: [-1, 1] -> bins [-1,-.5) [-.5,0) [0,.5) [.5,1]
    a = torch.tensor([-1.0, -0.5, -1e-4, 0.0, 0.5, 1.0])
    full = torch.stack([a, torch.zeros(6), torch.zeros(6), torch.full((6,), 15.0)], -1)  # (6, 4)
    assert tok.encode(full)[:, 0].tolist() == [0, 1, 1, 2, 3, 3]
    centres = tok.decode(torch.tensor([[0, 0, 0, 0], [3, 3, 3, 3]]))  # (2, 4)
    torch.testing.assert_close(centres[:, 0], torch.tensor([-0.75, 0.75]))
    torch.testing.assert_close(centres[:, 3], torch.tensor([11.25, 18.75]))


def test_out_of_range_values_clip_to_the_edge_bins() -> None:
    tok = make()
    a = torch.tensor([[-5.0, -1.0, -9.0, 0.0], [5.0, 3.0, 9.0, 100.0]])
    bins = tok.encode(a)
    assert bins[0].tolist() == [0, 0, 0, 0]
    assert bins[1].tolist() == [255, 255, 255, 255]
    decoded = tok.decode(bins)
    assert (decoded[0] >= tok.low).all() and (decoded[1] <= tok.high).all()


def test_constant_dimension_decodes_to_its_value() -> None:
    tok = ActionTokenizer(low=[0.0, 0.3], high=[1.0, 0.3], n_bins=8)
    bins = tok.encode(torch.tensor([[0.5, 0.3], [0.1, 0.3 + 1e-6], [0.1, 0.9]]))
    assert bins[:, 1].tolist() == [4, 4, 4]  # always the middle bin, whatever the noise
    out = tok.decode(bins[:2])
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[:, 1], torch.tensor([0.3, 0.3]))  # decodes to low


def test_token_ids_are_explicit_and_round_trip() -> None:
    tok = make(n_bins=8)
    with pytest.raises(RuntimeError, match="not bound"):
        tok.bins_to_tokens(torch.tensor([0]))
    ids = [100 + 3 * i for i in range(8)]  # not contiguous, not at the end of anything
    tok.bind(ids)
    bins = torch.tensor([[0, 7, 3], [5, 1, 2]])
    tokens = tok.bins_to_tokens(bins)
    assert tokens.tolist() == [[100, 121, 109], [115, 103, 106]]
    assert torch.equal(tok.tokens_to_bins(tokens), bins)
    with pytest.raises(ValueError, match="not action tokens"):
        tok.tokens_to_bins(torch.tensor([101]))
    assert "token_ids" in tok.state_dict()  # saved with the weights
    assert action_token_names(3) == ["<act_0>", "<act_1>", "<act_2>"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"low": [0.0, 0.0], "high": [1.0]}, "same action space"),
        ({"low": [1.0], "high": [0.0]}, "below low"),
        ({"low": [], "high": []}, "empty"),
        ({"low": [0.0], "high": [float("nan")]}, "finite"),
        ({"low": [0.0], "high": [1.0], "n_bins": 1}, "n_bins=1"),
    ],
)
def test_bad_construction(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ActionTokenizer(**kwargs)


def test_wrong_action_dimension_is_named() -> None:
    with pytest.raises(ValueError, match="action dimension D=4"):
        make().encode(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"\[0, 256\)"):
        make().decode(torch.full((1, 4), 256))
