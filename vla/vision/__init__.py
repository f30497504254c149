"""Vision encoders: images -> patch tokens ``(N, P, C)``."""

from vla.vision.colour_shape import ColourShapeEncoder
from vla.vision.timm_encoder import TimmEncoder

__all__ = ["ColourShapeEncoder", "TimmEncoder"]
