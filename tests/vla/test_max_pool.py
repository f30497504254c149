"""The max-pool that compiled graphs run as ATen's kernels (vla/vision/max_pool.py)."""

import pytest
import torch
from torch import nn

from vla.vision import TimmEncoder
from vla.vision.max_pool import MaxPool2d, use_aten_max_pools


def _maps(dtype: torch.dtype) -> torch.Tensor:
    torch.manual_seed(0)
    x = torch.randn(4, 8, 9, 10).relu()  # zeros after the ReLU: windows with tied maxima
    return x.to(dtype).contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(
    "options", [dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=2, ceil_mode=True)]
)
def test_compiled_max_pool_gives_atens_values_and_gradients(dtype, options) -> None:
    reference, pool = nn.MaxPool2d(**options), MaxPool2d(**options)
    x = _maps(dtype)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    want = reference(a)
    grad = torch.randn_like(want)
    want.backward(grad)
    # aot_eager traces through the custom op's fake and autograd formulas without a C++ build
    got = torch.compile(pool, backend="aot_eager", fullgraph=True)(b)
    got.backward(grad)
    assert torch.equal(got, want) and got.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(b.grad, a.grad)  # ties go to the same (first) maximum


def test_eager_max_pool_is_torchs_and_the_encoder_swaps_its_pools() -> None:
    x = _maps(torch.float32)
    assert torch.equal(MaxPool2d(3, 2, 1)(x), nn.functional.max_pool2d(x, 3, 2, 1))
    kwargs = {"channels": [8, 8, 16, 16]}
    encoder = TimmEncoder("resnet10t", 64, feature_stage=3, model_kwargs=kwargs)
    pools = [m for m in encoder.modules() if isinstance(m, nn.MaxPool2d)]
    assert pools and all(type(m) is MaxPool2d for m in pools)
    plain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2), nn.Sequential(nn.MaxPool2d(3)))
    names = list(plain.state_dict())
    assert use_aten_max_pools(plain) == 2
    assert type(plain[1]) is MaxPool2d and type(plain[2][0]) is MaxPool2d
    assert plain[2][0].kernel_size == 3 and list(plain.state_dict()) == names
