"""The prompt a VLA reads: ``[instruction][observation][prompt end]``, embedded and masked.

The instruction is the left-padded text tokens (the LM's own embeddings of the text tokenizer's
ids, or a frozen pretrained text encoder's states through the text adapter) followed by speech
tokens when the model hears spoken commands (``vla.spoken_instruction``); the observation is the
camera and state tokens (``vla.observation_encoder``), FiLM-conditioned on the mean instruction
embedding when the image encoder has FiLM. ``text_first`` puts the instruction first (every image token can attend
to it); ``vision_first`` is RT-2 / PaLM-E's order. Padding is masked out and not counted in
positions (``vla.decoding.positions``), so a padded sample computes what it computes alone.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from vla.text.normalize import normalize_instruction

if TYPE_CHECKING:
    from vla.model import VLA


def instruction_inputs(
    model: "VLA", texts: Sequence[str], audio: Tensor | None, audio_length: Tensor | None
) -> tuple[Sequence[str], Tensor | None, Tensor | None]:
    """What of an instruction ``model`` reads: the text unless ``instruction=audio`` (then empty
    strings), the speech when ``instruction`` is ``audio`` or ``both`` (then required). Typed
    text is normalized (``vla.text.normalize``: case, whitespace, outer punctuation)."""
    if model.instruction == "text":
        return [normalize_instruction(t) for t in texts], None, None  # "Touch it." = "touch it"
    if audio is None:
        raise ValueError(
            f"this model takes spoken instructions (instruction={model.instruction!r}): pass "
            "audio (B, N) at the audio encoder's sample rate; to train, collect with "
            "`vla-collect ... speech=true` and set dataset.audio=true"
        )
    if model.instruction == "audio":
        texts = [""] * len(texts)  # the typed text is never read
    return [normalize_instruction(t) for t in texts], audio, audio_length


def embed_prompt(
    model: "VLA",
    images: Tensor,
    texts: Sequence[str],
    state: Tensor | None,
    extra: int,
    audio: Tensor | None = None,
    audio_length: Tensor | None = None,
    speech: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Prompt embeddings ``(B, L, D)`` and mask ``(B, L)`` (1 = real token), ``extra`` output
    tokens to follow: ``[left-padded text][speech][observation][end]`` or
    ``[observation][text][speech][end]`` (speech only when ``audio`` is given). ``speech``:
    the clips' ``speech_tokens`` when the caller already has them (computed once per batch)."""
    model.obs.check_images(images)
    if isinstance(texts, str) or len(texts) != images.shape[0]:
        raise ValueError(
            f"instructions must be a list of {images.shape[0]} strings (one per image row), "
            f"got {type(texts).__name__} of length {len(texts)}"
        )
    text, text_mask = embed_text(model, texts)  # (B, L, D), (B, L)
    longest = text.shape[1]
    limit = model.llm.max_positions
    if audio is not None and speech is None:
        speech = speech_tokens(model, audio, audio_length)  # (B, Q, D)
    spoken = 0 if speech is None else speech.shape[1]
    total = model.obs.num_tokens + longest + spoken + 1 + extra
    if limit is not None and total > limit:
        i = int(text_mask.sum(1).argmax())
        raise ValueError(
            f"instruction {i} ({texts[i][:40]!r}...) has {longest} tokens: with "
            f"{model.obs.num_tokens} observation and {extra} output tokens the sequence is {total} "
            f"> the LM's context of {limit} (max_position_embeddings); shorten it or use an "
            "LM with a longer context"
        )
    b = len(texts)
    if speech is not None:  # speech tokens right after the text: one instruction span
        text = torch.cat([text, speech], dim=1)  # (B, L + Q, D)
        ones = torch.ones(b, speech.shape[1], dtype=text_mask.dtype, device=model.device)
        text_mask = torch.cat([text_mask, ones], dim=1)  # (B, L + Q)
    condition = None
    if model.obs.film is not None:  # FiLM encoder: the mean instruction embedding conditions it
        w = text_mask.unsqueeze(-1).to(text.dtype)  # (B, L, 1)
        condition = (text * w).sum(1) / w.sum(1).clamp_min(1)  # (B, D)
    obs = model.obs(images, state, condition)  # (B, N, D)
    end = model.prompt_end.expand(b, 1, -1)  # (B, 1, D)
    obs_mask = torch.ones(b, obs.shape[1], dtype=torch.long, device=model.device)  # (B, N)
    end_mask = torch.ones(b, 1, dtype=torch.long, device=model.device)  # (B, 1)
    if model.prompt_order == "text_first":
        embeds = torch.cat([text, obs, end], dim=1)  # (B, L + N + 1, D)
        mask = torch.cat([text_mask, obs_mask, end_mask], dim=1)  # (B, L + N + 1)
    else:
        embeds = torch.cat([obs, text, end], dim=1)  # (B, N + L + 1, D)
        mask = torch.cat([obs_mask, text_mask, end_mask], dim=1)  # (B, N + L + 1)
    return embeds, mask


def embed_text(model: "VLA", texts: Sequence[str]) -> tuple[Tensor, Tensor]:
    """Left-padded instruction tokens in LM space ``(B, L, D)`` and mask ``(B, L)``: through the
    pretrained text encoder and its adapter when the model has one, else the LM's own token
    embeddings of the text tokenizer's ids."""
    if model.text_encoder is not None and model.text_adapter is not None:
        states, mask = model.text_encoder(texts)  # (B, L, C), (B, L)
        text = model.text_adapter(states)  # (B, L, D)
    else:
        text, mask = embed_token_ids(model, model.text_tokenizer.encode_batch(texts))
    if model.training and model.text_dropout:
        mask = drop_words(mask, model.text_dropout)  # (B, L)
    return text, mask  # (B, L, D), (B, L)


def drop_words(mask: Tensor, p: float) -> Tensor:
    """``mask`` ``(B, L)`` with each real token dropped (0) with probability ``p``; a row keeps
    at least one of its tokens (its last) so no instruction vanishes entirely."""
    keep = torch.rand(mask.shape, device=mask.device) >= p  # (B, L)
    dropped = mask * keep.to(mask.dtype)  # (B, L)
    empty = (dropped.sum(1) == 0) & (mask.sum(1) > 0)  # (B,) rows that lost every token
    last = torch.zeros_like(mask)  # (B, L)
    last[:, -1] = 1  # left padding: a non-empty row's last column is a real token
    return torch.where(empty[:, None], mask * last, dropped)  # (B, L)


def embed_token_ids(model: "VLA", ids: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """Left-padded token embeddings ``(B, L, D)`` and their mask ``(B, L)`` (1 = real token)."""
    b, longest = len(ids), max((len(i) for i in ids), default=0)
    text_ids = torch.full((b, longest), model.text_tokenizer.pad_id, dtype=torch.long)  # (B, L)
    text_mask = torch.zeros(b, longest, dtype=torch.long)  # (B, L)
    for row, seq in enumerate(ids):
        if seq:
            text_ids[row, longest - len(seq) :] = torch.tensor(seq)
            text_mask[row, longest - len(seq) :] = 1
    return model.llm.embed(text_ids.to(model.device)), text_mask.to(model.device)


def speech_tokens(model: "VLA", audio: Tensor, audio_length: Tensor | None) -> Tensor:
    """Spoken instructions ``(B, N)`` -> the model's LM-space speech tokens ``(B, Q, D)``."""
    if model.speech is None:
        raise ValueError("audio given, but this model has no audio encoder")
    lengths = audio_length.to(model.device) if audio_length is not None else None
    return model.speech(audio.to(model.device), lengths)  # (B, Q, D)
