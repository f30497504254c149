"""Colour and shape in separate streams, so an instruction's colour and shape words can only add.

Why: a single image encoder, trained on instructions that never name some colour x shape pairs as
the target (the touch task's held-out pairs; they still appear as distractors), can give such an
object a feature of its own ("red cube" as one pattern) and learn that it is never the one to
touch. Every way the instruction then meets the features (FiLM, keypoint queries) can read that
pattern, and the held-out pair reads as "not this" instead of "red" and "cube" (README "Language":
the failures touch an object of the target's colour or of its shape).

Here the image goes two ways, and the tokens are their features side by side, ``(N, P, C_shape +
C_colour)``:

- **shape**: any image encoder (a ``TimmEncoder``, FiLM-conditioned or not), fed in training a
  colour-jittered copy of the image: every image's colours are rotated about the grey axis by a
  random angle (a hue rotation: greys and white stay, and so does each colour's saturation and
  mean intensity), so its features cannot tell which hue an object has, only its outline and
  shading; optional random desaturation and brightness scale hide more (measured: they cost
  precision, README "Language");
- **colour**: a per-pixel MLP (1x1 convolutions: a pixel's colour and nothing around it),
  average-pooled to the shape stream's patch grid: each patch says which colours it holds and how
  much of each, nothing of shape.

Neither stream can hold a colour x shape pattern, so a reader that is linear in the features
(the conditioned spatial softmax's keypoint queries, ``model.adapter.conditioned=true``) scores a
patch as colour evidence plus shape evidence: "red" and "cube" add where both hold, whatever
pairs were targets in training. A FiLM on the shape stream (the instruction scaling its
channels) can pick out the named shape but still not the named hue, which it cannot see. At
evaluation the shape stream sees the image as it is (the identity is one of the rotations it
trained on).
"""

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from vla.hydra_config import target_config
from vla.vision.timm_encoder import TimmEncoder

# the grey axis (1, 1, 1) / sqrt(3): a rotation about it keeps greys and changes hue alone
_GREY = torch.full((3,), 1.0 / math.sqrt(3.0))


def hue_rotations(angles: Tensor) -> Tensor:
    """``(N,)`` angles in radians -> ``(N, 3, 3)`` RGB rotations about the grey axis (Rodrigues'
    formula): a colour's hue turns by the angle, its grey part (mean of R, G, B) stays."""
    k = _GREY.to(angles)
    cross = torch.zeros(3, 3, dtype=angles.dtype, device=angles.device)  # [k]x
    cross[0, 1], cross[0, 2], cross[1, 2] = -k[2], k[1], -k[0]
    cross = cross - cross.T
    cos, sin = angles.cos()[:, None, None], angles.sin()[:, None, None]  # (N, 1, 1)
    eye = torch.eye(3, dtype=angles.dtype, device=angles.device)
    return cos * eye + sin * cross + (1 - cos) * torch.outer(k, k)  # (N, 3, 3)


def colour_jitter(
    images: Tensor, saturation: tuple[float, float], brightness: tuple[float, float]
) -> Tensor:
    """``(N, 3, H, W)`` in [0, 1] -> the same images, each with its hue rotated by a uniform angle,
    its saturation and brightness scaled by uniform factors in the given ranges, clamped to
    [0, 1]. Per image, so one batch shows every object in many colours."""
    n = images.shape[0]
    draw = torch.rand(n, 3, device=images.device, dtype=torch.float32)  # (N, 3)
    rot = hue_rotations(draw[:, 0] * 2 * math.pi)  # (N, 3, 3)
    x = torch.einsum("nij,njhw->nihw", rot, images.float())  # (N, 3, H, W)
    grey = x.mean(1, keepdim=True)  # (N, 1, H, W)
    sat = saturation[0] + (saturation[1] - saturation[0]) * draw[:, 1]  # (N,)
    gain = brightness[0] + (brightness[1] - brightness[0]) * draw[:, 2]  # (N,)
    x = grey + sat[:, None, None, None] * (x - grey)  # (N, 3, H, W)
    return (x * gain[:, None, None, None]).clamp(0, 1).to(images.dtype)


class ColourShapeEncoder(nn.Module):
    """Patch tokens from a colour-blind shape stream and a shape-blind colour stream.

    The same interface as ``TimmEncoder`` (``image_size``, ``num_patches``, ``embed_dim``,
    ``film_channels``, ``forward(images, film=None)``); a FiLM, if the shape encoder has one,
    conditions the shape stream.

    Args:
        shape: the shape stream's encoder (its patch grid must be square).
        colour_channels: the colour stream's output width per patch.
        colour_hidden: the width of its hidden per-pixel layer.
        jitter: colour-jitter the shape stream's input in training (false: the plain image; the
            shape stream can then learn colours, and only the colour stream's pooling differs
            from a single encoder).
        saturation: the range of the jitter's saturation factor (1 = unchanged, 0 = grey).
        brightness: the range of its brightness factor.
    """

    def __init__(
        self,
        shape: TimmEncoder,
        colour_channels: int = 32,
        colour_hidden: int = 32,
        jitter: bool = True,
        saturation: tuple[float, float] = (1.0, 1.0),
        brightness: tuple[float, float] = (1.0, 1.0),
    ) -> None:
        super().__init__()
        sat = tuple(float(v) for v in saturation)
        bright = tuple(float(v) for v in brightness)
        for name, (low, high), top in (("saturation", sat, 1.0), ("brightness", bright, 2.0)):
            if not 0.0 <= low <= high <= top:
                raise ValueError(f"{name}={[low, high]} must be a range 0 <= low <= high <= {top}")
        if colour_channels < 1 or colour_hidden < 1:
            raise ValueError(
                f"colour_channels={colour_channels} and colour_hidden={colour_hidden} must be >= 1"
            )
        side = math.isqrt(shape.num_patches)
        if side * side != shape.num_patches:
            raise ValueError(
                f"the colour stream pools to the shape encoder's patch grid, which must be square; "
                f"it has {shape.num_patches} patches"
            )
        self.config = target_config(
            self,
            shape=shape.config,
            colour_channels=colour_channels,
            colour_hidden=colour_hidden,
            jitter=jitter,
            saturation=list(sat),
            brightness=list(bright),
        )
        self.shape = shape
        self.jitter, self.saturation, self.brightness = jitter, sat, bright
        self.colour = nn.Sequential(
            nn.Conv2d(3, colour_hidden, kernel_size=1),
            nn.GELU(),
            nn.Conv2d(colour_hidden, colour_channels, kernel_size=1),
        )
        self.grid = side
        self.image_size = shape.image_size
        self.num_patches = shape.num_patches
        self.embed_dim = shape.embed_dim + colour_channels
        self.film_channels = shape.film_channels

    def forward(self, images: Tensor, film: Tensor | None = None) -> Tensor:
        """``(N, 3, H, W)`` floats in [0, 1] -> patch tokens ``(N, P, C_shape + C_colour)``."""
        seen = images
        if self.training and self.jitter:
            seen = colour_jitter(images, self.saturation, self.brightness)  # (N, 3, H, W)
        shape = self.shape(seen, film)  # (N, P, C_shape)
        colour = self.colour_tokens(images)  # (N, P, C_colour)
        return torch.cat([shape, colour.to(shape.dtype)], dim=-1)  # (N, P, C)

    def colour_tokens(self, images: Tensor) -> Tensor:
        """``(N, 3, H, W)`` in [0, 1] -> ``(N, P, C_colour)``: the per-pixel MLP (``self.colour``)
        averaged over each patch, row-major like the shape stream's patches.

        The MLP's second layer is linear, so it commutes with the average: it is applied to the
        g x g pooled hidden vectors instead of the H x W pixels (the same numbers up to rounding),
        and the pixels go through the first layer as channels-last matmuls. On 128 images of 64 px
        (bf16 autocast, fwd+bwd, 2 CPU cores) 160 -> 62 ms eager and 71 -> 29 ms compiled against
        the 1x1 convolutions over every pixel followed by the pooling."""
        first, act, second = self.colour
        x = (2 * images - 1).permute(0, 2, 3, 1)  # (N, H, W, 3)
        hidden = F.linear(x, first.weight.flatten(1), first.bias)  # (N, H, W, C_h)
        hidden = act(hidden)  # a pixel's colour alone
        n, height, width, c = hidden.shape
        g = self.grid
        if height % g == 0 and width % g == 0:  # whole blocks: a reshape and a mean
            pooled = hidden.view(n, g, height // g, g, width // g, c).mean((2, 4))  # (N, g, g, C_h)
        else:
            pooled = F.adaptive_avg_pool2d(hidden.permute(0, 3, 1, 2), g).permute(0, 2, 3, 1)
        return F.linear(pooled.flatten(1, 2), second.weight.flatten(1), second.bias)  # (N, P, C)
