import json

import hydra.utils
import pytest
import torch
import torch.nn.functional as F

from vla.adapters import PerceiverResampler
from vla.audio import AudioEncoder

SR = 16000


def tiny(**kwargs) -> AudioEncoder:
    torch.manual_seed(0)
    args = {"max_seconds": 1.0, "n_mels": 32, "width": 32, "depth": 1, "heads": 2}
    return AudioEncoder(**{**args, **kwargs})


def test_sizes_and_output_shapes() -> None:
    enc = tiny().eval()
    # 1 s: 16000 // 160 + 1 = 101 frames -> stride 2 -> 51 -> stride 2 -> 26 tokens
    assert (enc.num_patches, enc.embed_dim) == (26, 32)
    tokens, mask = enc(torch.randn(3, 12000) * 0.1)
    assert tokens.shape == (3, 26, 32) and mask.shape == (3, 26) and mask.dtype == torch.bool
    assert mask.sum(1).tolist() == [19] * 3  # 12000 samples: 76 -> 38 -> 19 real tokens
    assert (tokens[~mask] == 0).all()
    assert torch.isfinite(tokens).all()
    variable = tiny(pad_to_max=False, conv_strides=[2, 2, 2]).eval()
    assert variable.num_patches == 13
    tokens, mask = variable(torch.randn(2, 8000) * 0.1)
    assert tokens.shape == (2, 7, 32) and mask.all()  # 51 -> 26 -> 13 -> 7


@pytest.mark.parametrize("pad_to_max", [True, False])
def test_padded_batch_matches_clips_alone(pad_to_max: bool) -> None:
    enc = tiny(pad_to_max=pad_to_max).eval()
    g = torch.Generator().manual_seed(1)
    short, long = torch.randn(1, 7003, generator=g) * 0.1, torch.randn(1, 16000, generator=g) * 0.1
    garbage = torch.randn(1, 16000 - 7003, generator=g)  # padding content must not matter
    batch = torch.cat([torch.cat([short, garbage], 1), long])  # (2, 16000)
    with torch.no_grad():
        tokens, mask = enc(batch, torch.tensor([7003, 16000]))
        alone, alone_mask = enc(short)
        long_alone, _ = enc(long)
    p = int(alone_mask.sum())
    assert mask[0].sum() == p and mask[0, :p].all() and not mask[0, p:].any()
    torch.testing.assert_close(tokens[0, :p], alone[0, :p], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(tokens[1], long_alone[0], atol=1e-5, rtol=1e-5)
    assert (tokens[0, p:] == 0).all()


def test_too_long_clip_names_the_limit() -> None:
    enc = tiny()
    with pytest.raises(ValueError, match=r"1\.00 s.*max_seconds=1\.0"):
        enc(torch.zeros(1, 16001))


@pytest.mark.parametrize(
    "lengths", [torch.tensor([0, 100]), torch.tensor([100, 9000]), torch.tensor([1.0, 2.0]), None]
)
def test_bad_inputs(lengths: torch.Tensor | None) -> None:
    enc = tiny()
    with pytest.raises(ValueError):
        if lengths is None:
            enc(torch.zeros(2, 100, dtype=torch.int16))
        else:
            enc(torch.zeros(2, 8000), lengths)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"width": 30, "heads": 4}, "divisible"),
        ({"conv_strides": [4]}, "conv_strides"),
        ({"conv_strides": []}, "conv_strides"),
        ({"max_seconds": 0.0}, "max_seconds"),
        ({"depth": 0}, "depth"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        tiny(**kwargs)


def test_gradients_reach_every_parameter() -> None:
    enc = tiny(dropout=0.1).train()
    wave = torch.randn(2, 9000) * 0.1
    tokens, mask = enc(wave, torch.tensor([9000, 5000]))
    (tokens[mask].square().mean()).backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_config_rebuilds_the_encoder() -> None:
    enc = tiny(conv_strides=(2, 3), pad_to_max=False).eval()
    assert json.loads(json.dumps(enc.config)) == enc.config  # plain, checkpoint-safe
    rebuilt = hydra.utils.instantiate(enc.config).eval()
    assert isinstance(rebuilt, AudioEncoder) and rebuilt.config == enc.config
    rebuilt.load_state_dict(enc.state_dict())
    wave = torch.randn(2, 8000) * 0.1
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(wave)[0], enc(wave)[0])


def test_plugs_into_an_adapter() -> None:
    enc = tiny()
    adapter = PerceiverResampler(
        in_dim=enc.embed_dim, out_dim=24, num_patches=enc.num_patches, num_latents=4, num_heads=2
    )
    tokens, _ = enc(F.pad(torch.randn(2, 4000) * 0.1, (0, 100)), torch.tensor([4000, 4100]))
    assert adapter(tokens).shape == (2, 4, 24)
