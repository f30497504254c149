"""RT-2 action tokenizer: per-dimension percentile normalization, uniform bins, explicit token ids.

A continuous action ``a`` (env units) is mapped to ``x = 2 (a - low) / (high - low) - 1`` with
``low`` / ``high`` the training split's 1st / 99th percentiles per dimension (OpenVLA), clipped to
[-1, 1], then cut into ``n_bins`` equal bins over [-1, 1]; a bin decodes to its centre, so the
round-trip error of an in-range value is at most half a bin width, ``(high - low) / (2 n_bins)``.

The bins are uniform *with* both edges included (bin ``n_bins - 1`` is closed at +1). OpenVLA's
``np.digitize`` over ``linspace(-1, 1, n_bins)`` leaves only ``n_bins - 1`` usable bins; this one
uses all of them.

Each bin is one token id in the language model's vocabulary. The ids are assigned by the VLA when it
adds ``<act_0>`` ... ``<act_{n-1}>`` to the text tokenizer (``bind``), are stored in the checkpoint
as the ``token_ids`` buffer, and are never "the last N ids of the vocabulary". The bins share one
set of tokens across dimensions, as in RT-2.
"""

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from vla.hydra_config import target_config, to_plain

# dimensions whose 1st and 99th percentiles coincide (e.g. a gripper never used by a task) have no
# spread to normalize: they always get the middle bin (no division by zero, and float noise cannot
# flip the target between the edge bins) and decode to ``low``
_MIN_SPAN = 1e-8


def action_token_names(n_bins: int) -> list[str]:
    """Vocabulary entries for the bins: ``<act_0>`` ... ``<act_{n_bins-1}>``."""
    return [f"<act_{i}>" for i in range(n_bins)]


class ActionTokenizer(nn.Module):
    """Continuous actions ``(..., D)`` <-> bin indices ``(..., D)`` <-> LM token ids.

    Args:
        low: per-dimension lower bound (the data's 1st percentile, ``stats["q01"]``), length D.
        high: per-dimension upper bound (the data's 99th percentile, ``stats["q99"]``), length D.
        n_bins: bins per dimension (RT-2 / OpenVLA use 256).
    """

    def __init__(
        self,
        low: Sequence[float] | Tensor,
        high: Sequence[float] | Tensor,
        n_bins: int = 256,
    ) -> None:
        super().__init__()
        low_t = torch.as_tensor(to_plain(low), dtype=torch.float32).flatten()  # (D,)
        high_t = torch.as_tensor(to_plain(high), dtype=torch.float32).flatten()  # (D,)
        if low_t.numel() == 0:
            raise ValueError("low=[] is empty: pass the per-dimension 1st percentiles (q01)")
        if low_t.shape != high_t.shape:
            raise ValueError(
                f"low has {low_t.numel()} dims but high has {high_t.numel()}: pass q01 and q99 "
                "of the same action space"
            )
        if not (torch.isfinite(low_t).all() and torch.isfinite(high_t).all()):
            raise ValueError(f"low={low_t.tolist()} / high={high_t.tolist()} must be finite")
        if (high_t < low_t).any():
            raise ValueError(
                f"high={high_t.tolist()} is below low={low_t.tolist()} in some dimension: "
                "pass low=q01 and high=q99 (not swapped)"
            )
        if n_bins < 2:
            raise ValueError(f"n_bins={n_bins} must be >= 2")
        self.n_bins = n_bins
        self.config = target_config(self, low=low_t, high=high_t, n_bins=n_bins)
        self.register_buffer("low", low_t)
        self.register_buffer("high", high_t)
        # -1 until the VLA binds real vocabulary ids (saved with the weights)
        self.register_buffer("token_ids", torch.full((n_bins,), -1, dtype=torch.long))

    @property
    def action_dim(self) -> int:
        return self.low.numel()

    @property
    def bin_width(self) -> Tensor:
        """Width of one bin in env units per dimension, ``(D,)``."""
        return (self.high - self.low) / self.n_bins  # (D,)

    def bind(self, token_ids: Sequence[int] | Tensor) -> None:
        """Record the LM vocabulary id of every bin (called by the VLA after adding the tokens)."""
        ids = torch.as_tensor(token_ids, dtype=torch.long)  # (n_bins,)
        if ids.shape != (self.n_bins,):
            raise ValueError(f"token_ids has shape {tuple(ids.shape)}, expected ({self.n_bins},)")
        if ids.unique().numel() != self.n_bins or (ids < 0).any():
            raise ValueError("token_ids must be n_bins distinct non-negative vocabulary ids")
        self.token_ids.copy_(ids)

    def _check_dim(self, x: Tensor, what: str) -> None:
        if x.ndim == 0 or x.shape[-1] != self.action_dim:
            raise ValueError(
                f"{what} has shape {tuple(x.shape)}: its last dimension must be the action "
                f"dimension D={self.action_dim} of this tokenizer (bounds from the dataset stats)"
            )

    def normalize(self, actions: Tensor) -> Tensor:
        """Env units -> [-1, 1], clipped: ``(..., D) -> (..., D)``."""
        self._check_dim(actions, "actions")
        span = self.high - self.low  # (D,)
        x = 2 * (actions.float() - self.low) / span.clamp_min(_MIN_SPAN) - 1  # (..., D)
        x = torch.where(span > _MIN_SPAN, x, torch.zeros_like(x))  # (..., D) constant dims -> 0
        return x.clamp(-1.0, 1.0)  # (..., D)

    def unnormalize(self, x: Tensor) -> Tensor:
        """[-1, 1] -> env units: ``(..., D) -> (..., D)``."""
        return (x + 1) / 2 * (self.high - self.low) + self.low  # (..., D)

    def encode(self, actions: Tensor) -> Tensor:
        """Env-unit actions ``(..., D)`` -> bin indices ``(..., D)`` in ``[0, n_bins)``."""
        x = self.normalize(actions)  # (..., D)
        bins = torch.floor((x + 1) / 2 * self.n_bins).long()  # (..., D)
        return bins.clamp(0, self.n_bins - 1)  # (..., D) +1 falls into the last bin

    def decode(self, bins: Tensor) -> Tensor:
        """Bin indices ``(..., D)`` -> env-unit actions ``(..., D)`` at the bin centres."""
        self._check_dim(bins, "bins")
        if bins.numel() and (bins.min() < 0 or bins.max() >= self.n_bins):
            raise ValueError(f"bin indices must lie in [0, {self.n_bins}); got {bins.min()}..")
        x = -1 + (bins.float() + 0.5) * (2 / self.n_bins)  # (..., D)
        return self.unnormalize(x)  # (..., D)

    def bins_to_tokens(self, bins: Tensor) -> Tensor:
        """Bin indices -> LM token ids, same shape."""
        self._check_bound()
        return self.token_ids[bins]  # (...)

    def tokens_to_bins(self, token_ids: Tensor) -> Tensor:
        """LM token ids -> bin indices, same shape; raises on an id that is not an action token."""
        self._check_bound()
        match = token_ids.unsqueeze(-1) == self.token_ids  # (..., n_bins)
        if not match.any(-1).all():
            bad = token_ids[~match.any(-1)].unique()[:5].tolist()
            raise ValueError(f"token ids {bad} are not action tokens of this tokenizer")
        return match.long().argmax(-1)  # (...)

    def _check_bound(self) -> None:
        if (self.token_ids < 0).any():
            raise RuntimeError("token ids are not bound: the VLA calls bind() when it is built")

    def extra_repr(self) -> str:
        return f"action_dim={self.action_dim}, n_bins={self.n_bins}"
