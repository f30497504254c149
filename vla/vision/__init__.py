"""Vision encoders: images -> patch tokens ``(N, P, C)``."""

from vla.vision.timm_encoder import TimmEncoder

__all__ = ["TimmEncoder"]
