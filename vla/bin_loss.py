"""Cross-entropy over action bins, optionally against a Gaussian over neighbouring bins.

One-hot cross-entropy treats bin 127 as wrong as bin 0 when the target is 128, although the first
is a near miss in action space; smoothing the target over neighbours (std ``smoothing`` bins) gives
an ordinal signal, as in the "soft" discretized targets of e.g. MuZero's value head and later VLA
action heads. ``smoothing=0`` is plain RT-2 cross-entropy.
"""

import torch
import torch.nn.functional as F
from torch import Tensor


def bin_cross_entropy(
    logits: Tensor, bins: Tensor, weight: Tensor, smoothing: float = 0.0
) -> Tensor:
    """Weighted mean loss of ``logits`` ``(B, n, K)`` against bin indices ``bins`` ``(B, n)``.

    ``weight`` ``(B, n)`` is 0 for padded action steps (past the episode end), 1 otherwise.
    """
    if smoothing == 0:
        ce = F.cross_entropy(logits.flatten(0, 1), bins.flatten(), reduction="none")  # (B*n,)
    else:
        grid = torch.arange(logits.shape[-1], device=logits.device)  # (K,)
        dist = (grid - bins.unsqueeze(-1)).float() / smoothing  # (B, n, K)
        target = torch.softmax(-0.5 * dist**2, dim=-1)  # (B, n, K)
        ce = -(target * logits.log_softmax(-1)).sum(-1).flatten()  # (B*n,)
    w = weight.flatten().float()  # (B*n,)
    return (ce * w).sum() / w.sum().clamp_min(1)
