"""Text answers about an observation: the co-training path (RT-2 trains on web VQA beside robot data).

A QA sample is ``[observation][question][prompt end][answer][eos]`` with the loss on the answer and
its end token only, over the whole text vocabulary. Answers are right-padded after the prompt;
positions count real tokens only, so padding changes nothing. Rows whose answer is None are skipped,
so one batch can mix QA samples and action samples.
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from vla.causal_lm import CausalLM
from vla.decoding import greedy_decode, positions
from vla.prompt import PromptEncoder, PromptInputs

_IGNORE = -100  # F.cross_entropy's ignore_index


def text_loss(
    prompt: PromptEncoder, llm: CausalLM, inputs: PromptInputs, answers: Sequence[str | None]
) -> Tensor:
    """Next-token loss on each answer (and its end token) given the observation and the
    question in ``inputs.texts`` (and, for a speech model, the spoken instruction
    ``inputs.audio``)."""
    keep = [i for i, a in enumerate(answers) if a is not None]
    if not keep:
        return inputs.images.new_zeros((), dtype=torch.float32)
    tok = prompt.text_tokenizer
    ans_ids = [tok.encode(answers[i]) + [tok.eos_id] for i in keep]
    longest = max(len(a) for a in ans_ids)
    prefix, mask = prompt(inputs.rows(keep), longest)  # (B', L, D), (B', L)
    b = len(keep)
    targets = torch.full((b, longest), _IGNORE, dtype=torch.long)  # (B', La)
    answer_in = torch.full((b, longest), tok.pad_id, dtype=torch.long)  # (B', La)
    for row, seq in enumerate(ans_ids):
        targets[row, : len(seq)] = torch.tensor(seq)
        answer_in[row, : len(seq)] = torch.tensor(seq)
    targets, answer_in = targets.to(prompt.device), answer_in.to(prompt.device)
    ans_mask = (targets != _IGNORE).long()  # (B', La)
    x = torch.cat([prefix, llm.embed(answer_in)], dim=1)  # (B', L + La, D)
    full_mask = torch.cat([mask, ans_mask], dim=1)  # (B', L + La)
    hidden, _ = llm(x, full_mask, positions(full_mask))  # (B', L + La, D)
    # the prompt end predicts answer token 0, answer token k predicts token k + 1
    logits = llm.logits(hidden[:, prefix.shape[1] - 1 : -1])  # (B', La, V)
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=_IGNORE)


@torch.inference_mode()
def generate_text(
    prompt: PromptEncoder,
    llm: CausalLM,
    text_ids: Tensor,
    inputs: PromptInputs,
    max_new_tokens: int = 32,
) -> list[str]:
    """Greedy answers to the questions in ``inputs.texts``, constrained to the vocabulary ids
    ``text_ids`` ``(K_text,)`` (never an action token), up to ``eos``."""
    tok = prompt.text_tokenizer
    prefix, mask = prompt(inputs, max_new_tokens)
    eos = int((text_ids == tok.eos_id).nonzero()[0, 0])
    choices = greedy_decode(
        llm,
        prefix,
        mask,
        max_new_tokens,
        head=lambda h: llm.logits(h)[..., text_ids],  # (B, K_text)
        embed_choice=lambda c: llm.embed(text_ids[c]),  # (B, D)
        stop_choice=eos,
    )  # (B, max_new_tokens)
    out = []
    for row in text_ids[choices].tolist():
        end = row.index(tok.eos_id) if tok.eos_id in row else len(row)
        out.append(tok.decode(row[:end]))
    return out
