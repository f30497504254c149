"""Autoregressive decoding over a restricted set of token ids, with or without a KV cache.

Constrained decoding is structural: ``head`` scores only the allowed ids (the action bins, or the
text ids for answers), so neither an argmax nor a draw (:func:`pick` with a temperature) can ever
pick anything else, even from an untrained model.
With ``use_cache`` the prefix is encoded once and each step feeds one token (HF ``DynamicCache``);
without it every step re-encodes the whole sequence. Both give the same tokens; the slow path is
kept as the reference the tests and the benchmark compare against.
"""

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

from vla.causal_lm import CausalLM

Decoding = Literal["parallel", "autoregressive"]
DECODINGS = ("parallel", "autoregressive")
# parallel decoding's LM query slots: one per action token, or one per action step
ActionSlots = Literal["token", "step"]
ACTION_SLOTS = ("token", "step")


def check_decoding(decoding: str, action_slots: str) -> None:
    """A ValueError unless ``decoding`` and ``action_slots`` are known and fit together."""
    if decoding not in DECODINGS:
        raise ValueError(f"decoding={decoding!r} must be one of {DECODINGS}")
    if action_slots not in ACTION_SLOTS:
        raise ValueError(f"action_slots={action_slots!r} must be one of {ACTION_SLOTS}")
    if action_slots == "step" and decoding != "parallel":
        raise ValueError("action_slots='step' needs decoding='parallel' (one query per step)")


def positions(attention_mask: Tensor) -> Tensor:
    """Position of every token counting real tokens only: ``(B, L)`` -> ``(B, L)``.

    Padding inside the sequence is invisible to attention (masked) and to positions (not
    counted), so a padded sample is computed exactly as its unpadded self.
    """
    return (attention_mask.long().cumsum(-1) - 1).clamp_min(0)  # (B, L)


def check_temperature(temperature: float) -> None:
    """A ValueError unless ``temperature`` is a usable sampling temperature (0: greedy)."""
    if not temperature >= 0 or temperature == float("inf"):
        raise ValueError(
            f"temperature={temperature} must be a finite number >= 0 (0: greedy, the argmax; "
            "1: draw from the predicted distribution)"
        )


def pick(
    scores: Tensor, temperature: float = 0.0, generator: torch.Generator | None = None
) -> Tensor:
    """One choice per row of ``scores`` ``(..., K)`` -> ``(...)``: the argmax (``temperature``
    0), else a draw from ``softmax(scores / temperature)`` with ``generator``."""
    if temperature == 0:
        return scores.argmax(-1)  # (...)
    probs = torch.softmax(scores.float() / temperature, dim=-1)  # (..., K)
    flat = probs.reshape(-1, probs.shape[-1])  # (N, K)
    return torch.multinomial(flat, 1, generator=generator).view(probs.shape[:-1])  # (...)


def greedy_decode(
    llm: CausalLM,
    prefix: Tensor,
    prefix_mask: Tensor,
    n_steps: int,
    head: Callable[[Tensor], Tensor],
    embed_choice: Callable[[Tensor], Tensor],
    use_cache: bool = True,
    stop_choice: int | None = None,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Pick ``n_steps`` choices after ``prefix``: greedily, or drawn at ``temperature`` > 0.

    Args:
        llm: the language model.
        prefix: input embeddings ``(B, L, D)``; prefix_mask: ``(B, L)``, 1 for real tokens.
        n_steps: number of tokens to decode.
        head: hidden ``(B, D)`` -> scores ``(B, K)`` over the allowed choices.
        embed_choice: choice indices ``(B,)`` -> input embeddings ``(B, D)`` of the next step.
        use_cache: reuse keys / values (KV cache) instead of re-encoding the sequence.
        stop_choice: once a row picks this choice it keeps picking it (end of text).
        temperature, generator: :func:`pick`'s (0: the argmax).

    Returns:
        choice indices ``(B, n_steps)`` (indices into the allowed set, not vocabulary ids).
    """
    b = prefix.shape[0]
    embeds, mask = prefix, prefix_mask.long()  # (B, L, D), (B, L)
    hidden, cache = llm(embeds, mask, positions(mask), use_cache=use_cache)  # (B, L, D)
    done = torch.zeros(b, dtype=torch.bool, device=prefix.device)  # (B,)
    choices = []
    for step in range(n_steps):
        choice = pick(head(hidden[:, -1]), temperature, generator)  # (B,)
        if stop_choice is not None:
            choice = torch.where(done, torch.full_like(choice, stop_choice), choice)  # (B,)
            done = done | (choice == stop_choice)  # (B,)
        choices.append(choice)
        if step == n_steps - 1 or (stop_choice is not None and bool(done.all())):
            break
        new = embed_choice(choice).unsqueeze(1)  # (B, 1, D)
        next_pos = mask.sum(-1, keepdim=True)  # (B, 1) real tokens so far = next position
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)  # (B, L + step + 1)
        if use_cache:
            hidden, cache = llm(new, mask, next_pos, cache=cache, use_cache=True)  # (B, 1, D)
        else:
            embeds = torch.cat([embeds, new], dim=1)  # (B, L + step + 1, D)
            hidden, _ = llm(embeds, mask, positions(mask))  # (B, L + step + 1, D)
    out = torch.stack(choices, dim=1)  # (B, steps decoded)
    if out.shape[1] < n_steps:  # every row stopped early: pad with the stop choice
        pad = torch.full((b, n_steps - out.shape[1]), stop_choice, dtype=out.dtype)  # (B, rest)
        out = torch.cat([out, pad.to(out.device)], dim=1)  # (B, n_steps)
    return out
