"""Adapters: patch tokens ``(B, P, C)`` -> LM-space tokens ``(B, Q, D_lm)`` (see ``Adapter``)."""

from vla.adapters.adapter import Adapter
from vla.adapters.attention_pool import AttentionPool
from vla.adapters.linear import Linear
from vla.adapters.mlp import MLP
from vla.adapters.perceiver_resampler import PerceiverResampler
from vla.adapters.qformer import QFormer
from vla.adapters.spatial_softmax import SpatialSoftmax

__all__ = [
    "MLP",
    "Adapter",
    "AttentionPool",
    "Linear",
    "PerceiverResampler",
    "QFormer",
    "SpatialSoftmax",
]
