"""A max-pool that ``torch.compile`` keeps as ATen's own kernels on a CPU.

Inductor lowers ``max_pool2d``'s backward on a CPU to a scatter of the gradients into a zeroed
float32 buffer in the contiguous (NCHW) layout, which the batch norm before it must then read
transposed. In the quickstart's compiled training step (the ResNet stem's 3 x 3 / 2 max-pool on
128 maps of 32 x 32 x 32, bf16, channels-last) ATen's kernels for the forward and the backward,
called as one opaque operator, take the step's forward + backward from 59.4 to 56.6 ms on a
2-core Intel Xeon VM (``python benchmarks/train_step.py``). The numbers are ATen's either way:
eager runs call ``F.max_pool2d`` itself, compiled ones the same kernels through ``vla::max_pool2d``.
"""

import torch
from torch import Tensor, nn


def _pool(
    x: Tensor,
    kernel_size: list[int],
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    ceil_mode: bool,
) -> tuple[Tensor, Tensor]:
    """ATen's ``max_pool2d_with_indices``: the pooled map and each output's argmax index."""
    return torch.ops.aten.max_pool2d_with_indices(
        x, kernel_size, stride, padding, dilation, ceil_mode
    )


def _pool_backward(
    grad: Tensor,
    x: Tensor,
    indices: Tensor,
    kernel_size: list[int],
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    ceil_mode: bool,
) -> Tensor:
    """ATen's ``max_pool2d_with_indices_backward``: the gradient routed to each argmax."""
    return torch.ops.aten.max_pool2d_with_indices_backward(
        grad, x, kernel_size, stride, padding, dilation, ceil_mode, indices
    )


# opaque to the compiler; the same functions give the output shapes and strides on fake tensors
max_pool2d = torch.library.custom_op("vla::max_pool2d", _pool, mutates_args=())
max_pool2d.register_fake(_pool)
max_pool2d_backward = torch.library.custom_op(
    "vla::max_pool2d_backward", _pool_backward, mutates_args=()
)
max_pool2d_backward.register_fake(_pool_backward)


def _setup_context(ctx, inputs, output) -> None:
    x, *options = inputs
    ctx.save_for_backward(x, output[1])
    ctx.options = options


def _backward(ctx, grad: Tensor, grad_indices: Tensor | None):
    x, indices = ctx.saved_tensors
    grad_x = max_pool2d_backward(grad, x, indices, *ctx.options)
    return grad_x, None, None, None, None, None


max_pool2d.register_autograd(_backward, setup_context=_setup_context)


def _pair(value: int | tuple[int, ...]) -> list[int]:
    return [int(value)] * 2 if isinstance(value, int) else [int(v) for v in value]


class MaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` (same options, no weights) that a compiled graph runs as ATen's kernels
    on a CPU (``vla::max_pool2d``); eager, and on other devices, it is ``F.max_pool2d``."""

    def forward(self, x: Tensor) -> Tensor:
        if not (torch.compiler.is_compiling() and x.device.type == "cpu") or self.return_indices:
            return super().forward(x)
        out, _ = max_pool2d(  # nn.MaxPool2d already set stride = kernel_size when it was None
            x,
            _pair(self.kernel_size),
            _pair(self.stride),
            _pair(self.padding),
            _pair(self.dilation),
            bool(self.ceil_mode),
        )
        return out


def use_aten_max_pools(model: nn.Module) -> int:
    """Swap every ``nn.MaxPool2d`` under ``model`` for :class:`MaxPool2d` with its options;
    returns how many. The state dict is unchanged (max-pools have none)."""
    swaps = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if type(child) is nn.MaxPool2d
    ]
    for parent, name, child in swaps:
        pool = MaxPool2d(
            child.kernel_size,
            child.stride,
            child.padding,
            child.dilation,
            child.return_indices,
            child.ceil_mode,
        )
        setattr(parent, name, pool)
    return len(swaps)
