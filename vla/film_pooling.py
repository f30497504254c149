"""How an instruction's tokens become one FiLM conditioning vector (``model.film_pooling``).

The image encoder's FiLM reads one vector per instruction (``vla.observation_encoder``);
``film_pooling`` says how the instruction's tokens become it: ``mean`` (every token alike), ``attention`` (a few learned heads weigh the tokens, so the words
that pick the target, a colour or a shape, can outweigh the rest of a paraphrase; it starts as the
mean and learns from there), ``context`` (the mean plus what a one-layer transformer over the
tokens and their positions adds, zero at the start: the mean is a bag of words, so in "put the red
cube on the blue pad" nothing says which colour is the object's and which the pad's, and the
destination's words dilute the target's; a word read in its sentence can carry its role) or
``ngram`` (the mean of the tokens, each with what a small nonlinear convolution over it and its
two neighbours adds, zero at the start: "red cube" and "blue pad" become features of their own,
with no capacity to memorize a whole sentence). On the multi-task recipe neither learned pooling
beat the mean (README "Multi-task").
"""

import torch
from torch import Tensor, nn

from vla.adapters.attention_block import FeedForward


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """``(B, L, D)`` tokens, ``(B, L)`` mask (1 = real) -> ``(B, D)`` mean of the real tokens;
    zero for a row with none."""
    w = mask.unsqueeze(-1).to(x.dtype)  # (B, L, 1)
    return (x * w).sum(1) / w.sum(1).clamp_min(1)


class AttentionPool(nn.Module):
    """Tokens ``(B, L, D)`` -> ``(B, D)``: ``heads`` learned softmax weightings over the real
    tokens, each a weighted mean, mixed back to D by a linear map. Zero-initialized scores and a
    mixing map that averages the heads: it starts as the plain mean."""

    def __init__(self, dim: int, heads: int = 4) -> None:
        super().__init__()
        self.score = nn.Linear(dim, heads)
        self.mix = nn.Linear(heads * dim, dim)
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)
        with torch.no_grad():
            self.mix.weight.copy_(torch.eye(dim).repeat(1, heads) / heads)  # (D, H*D)
            self.mix.bias.zero_()

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        real = mask.bool().unsqueeze(-1)  # (B, L, 1)
        scores = self.score(x).float().masked_fill(~real, -1e9)  # (B, L, H)
        w = (torch.softmax(scores, dim=1) * real).to(x.dtype)  # (B, L, H); an empty row -> 0
        pooled = torch.einsum("blh,bld->bhd", w, x)  # (B, H, D)
        return self.mix(pooled.flatten(1))  # (B, D)


class ContextPool(nn.Module):
    """Tokens ``(B, L, D)`` -> ``(B, D)``: their mean, plus a learned summary of the tokens read
    in context. One pre-norm transformer layer sees each token with its position (counted from
    the first real token, so left padding changes nothing), ``heads`` learned softmax weightings
    pool its output, and a zero-initialized map adds the pooled heads to the mean: it starts as
    the plain mean and learns what the mean cannot say, which word plays which role.

    Args:
        dim: token width D.
        heads: attention heads of the layer, and pooling heads.
        max_tokens: longest instruction (in tokens) it takes; a longer one is an error.
    """

    def __init__(self, dim: int, heads: int = 4, max_tokens: int = 256) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"film_pooling=context needs a width divisible by {heads}; got {dim}")
        self.max_tokens = max_tokens
        self.pos = nn.Parameter(torch.randn(max_tokens, dim) * 0.02)  # (Lmax, D)
        self.norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ff = FeedForward(dim, mult=2)
        self.score = nn.Linear(dim, heads)
        self.out = nn.Linear(heads * dim, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        real = mask.bool()  # (B, L)
        mean = masked_mean(x, mask)  # (B, D)
        if x.shape[1] > self.max_tokens:
            raise ValueError(
                f"an instruction of {x.shape[1]} tokens is longer than film_pooling=context's "
                f"{self.max_tokens}: shorten it"
            )
        position = (real.long().cumsum(1) - 1).clamp_min(0)  # (B, L) 0 at the first real token
        h = x + self.pos[position]  # (B, L, D)
        # an empty instruction would mask every key (NaN): let its rows see their first slot;
        # what they produce is dropped below
        ignore = ~real
        ignore[:, 0] &= real.any(1)
        q = self.norm(h)
        h = h + self.attn(q, q, q, key_padding_mask=ignore, need_weights=False)[0]
        h = h + self.ff(h)  # (B, L, D)
        scores = self.score(h).float().masked_fill(~real.unsqueeze(-1), -1e9)  # (B, L, H)
        weights = (torch.softmax(scores, dim=1) * real.unsqueeze(-1)).to(h.dtype)  # (B, L, H)
        pooled = torch.einsum("blh,bld->bhd", weights, h)  # (B, H, D)
        return mean + self.out(pooled.flatten(1)) * real.any(1, keepdim=True).to(x.dtype)


class NgramPool(nn.Module):
    """Tokens ``(B, L, D)`` -> ``(B, D)``: the masked mean of the tokens, each plus what a
    convolution over it and its neighbours adds (a width-``width`` convolution, GELU, and a
    zero-initialized linear map: it starts as the plain mean). The nonlinearity is what lets a
    pair of words ("blue pad") mean more than its two words; a linear convolution under a mean
    would still be a bag of words. Left padding changes nothing: padded tokens are zeroed, as the
    convolution's own padding is.

    Args:
        dim: token width D.
        width: words per convolution window (odd).
    """

    def __init__(self, dim: int, width: int = 3) -> None:
        super().__init__()
        if width < 1 or width % 2 == 0:
            raise ValueError(f"width={width} must be odd and >= 1")
        self.conv = nn.Conv1d(dim, dim, width, padding=width // 2)
        self.out = nn.Linear(dim, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = x * mask.unsqueeze(-1).to(x.dtype)  # padded tokens do not leak into their neighbours
        grams = self.conv(x.transpose(1, 2)).transpose(1, 2)  # (B, L, D)
        return masked_mean(x + self.out(nn.functional.gelu(grams)), mask)  # (B, D)


class WordSum(nn.Module):
    """Tokens ``(B, L, D)`` -> ``(B, D)``: the sum over the real tokens of a small MLP of each
    token alone (LayerNorm, Linear, GELU). ``film_head=product`` pools this way: each word's
    conditioning is computed from that word only, and a sum (not a mean) keeps a word's effect
    the same in a short instruction and a long one."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU())

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return (self.mlp(x) * mask.unsqueeze(-1).to(x.dtype)).sum(1)  # (B, D)


# film_pooling -> the module that pools the instruction's tokens ("mean" needs none)
FILM_POOLS: dict[str, type[nn.Module]] = {
    "attention": AttentionPool,
    "context": ContextPool,
    "ngram": NgramPool,
}
FILM_POOLINGS = ("mean", *FILM_POOLS)
