"""Text answers about an observation: the co-training path (RT-2 trains on web VQA beside robot data).

A QA sample is ``[observation][question][prompt end][answer][eos]`` with the loss on the answer and
its end token only, over the whole text vocabulary. Answers are right-padded after the prompt;
positions count real tokens only, so padding changes nothing. Rows whose answer is None are skipped,
so one batch can mix QA samples and action samples.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from vla.decoding import greedy_decode, positions

if TYPE_CHECKING:
    from vla.model import VLA

_IGNORE = -100  # F.cross_entropy's ignore_index


def text_loss(
    model: "VLA",
    images: Tensor,
    questions: Sequence[str],
    answers: Sequence[str | None],
    state: Tensor | None = None,
    audio: Tensor | None = None,
    audio_length: Tensor | None = None,
) -> Tensor:
    """Next-token loss on each answer (and its end token) given the observation and question
    (and, for a speech model, the spoken instruction ``audio`` ``(B, N)``)."""
    keep = [i for i, a in enumerate(answers) if a is not None]
    if not keep:
        return images.new_zeros((), dtype=torch.float32)
    tok = model.text_tokenizer
    idx = torch.tensor(keep, device=images.device)  # (B',)
    sub_state = state[idx] if state is not None else None  # (B', T, S)
    ans_ids = [tok.encode(answers[i]) + [tok.eos_id] for i in keep]
    longest = max(len(a) for a in ans_ids)
    sub_audio = audio[idx] if audio is not None else None  # (B', N)
    sub_length = audio_length[idx] if audio_length is not None else None  # (B',)
    prefix, mask = model.embed_prompt(
        images[idx], [questions[i] for i in keep], sub_state, longest, sub_audio, sub_length
    )
    b = len(keep)
    targets = torch.full((b, longest), _IGNORE, dtype=torch.long)  # (B', La)
    inputs = torch.full((b, longest), tok.pad_id, dtype=torch.long)  # (B', La)
    for row, seq in enumerate(ans_ids):
        targets[row, : len(seq)] = torch.tensor(seq)
        inputs[row, : len(seq)] = torch.tensor(seq)
    targets, inputs = targets.to(model.device), inputs.to(model.device)
    ans_mask = (targets != _IGNORE).long()  # (B', La)
    x = torch.cat([prefix, model.llm.embed(inputs)], dim=1)  # (B', L + La, D)
    full_mask = torch.cat([mask, ans_mask], dim=1)  # (B', L + La)
    hidden, _ = model.llm(x, full_mask, positions(full_mask))  # (B', L + La, D)
    # the prompt end predicts answer token 0, answer token k predicts token k + 1
    logits = model.llm.logits(hidden[:, prefix.shape[1] - 1 : -1])  # (B', La, V)
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=_IGNORE)


@torch.inference_mode()
def generate_text(
    model: "VLA",
    images: Tensor,
    questions: Sequence[str],
    state: Tensor | None = None,
    max_new_tokens: int = 32,
    audio: Tensor | None = None,
    audio_length: Tensor | None = None,
) -> list[str]:
    """Greedy answers, constrained to text tokens (never an action token), up to ``eos``;
    ``audio`` ``(B, N)``: a speech model's spoken instruction, part of what it is asked about."""
    tok = model.text_tokenizer
    text_ids = model.text_token_mask.nonzero().squeeze(1)  # (K_text,)
    prefix, mask = model.embed_prompt(images, questions, state, max_new_tokens, audio, audio_length)
    eos = int((text_ids == tok.eos_id).nonzero()[0, 0])
    choices = greedy_decode(
        model.llm,
        prefix,
        mask,
        max_new_tokens,
        head=lambda h: model.llm.logits(h)[..., text_ids],  # (B, K_text)
        embed_choice=lambda c: model.llm.embed(text_ids[c]),  # (B, D)
        stop_choice=eos,
    )  # (B, max_new_tokens)
    out = []
    for row in text_ids[choices].tolist():
        end = row.index(tok.eos_id) if tok.eos_id in row else len(row)
        out.append(tok.decode(row[:end]))
    return out
