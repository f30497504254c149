"""The prompt a VLA reads: ``[instruction][observation][prompt end]``, embedded and masked.

:class:`PromptInputs` (``vla.prompt_inputs``, re-exported here) is what a batch shows the model
(frames, the instruction or question text, state, spoken audio); :class:`PromptEncoder` owns
everything that turns it into LM-space tokens: the observation encoder, the text tokenizer (or a frozen pretrained text encoder and its adapter),
the speech encoder, the prompt-end embedding and the order. The VLA (actions), text answers and
the speech alignment all read prompts through it, and nothing here knows about actions.

The instruction is the left-padded text tokens (the LM's own embeddings of the text tokenizer's
ids, or a frozen pretrained text encoder's states through the text adapter) followed by speech
tokens when the model hears spoken commands (``vla.spoken_instruction``); the observation is the
camera and state tokens (``vla.observation_encoder``), FiLM-conditioned on the pooled instruction
embedding when the image encoder has FiLM.

Prompt order (``prompt_order``): ``text_first`` by default, ``vision_first`` is RT-2 / PaLM-E's
``[observation][instruction]``. In a causal LM only later tokens see earlier ones, so with the
instruction first every image token can attend to it and the visual features become
instruction-conditioned, the role FiLM plays in RT-1 (PaliGemma gets it from a bidirectional
prefix). Measured with ``python benchmarks/model.py --grounding-steps 1000`` (a synthetic "touch
the <colour> block" task, default model, batch 32, lr 1e-3, same seed; ~2.5 min per order on this
machine's 2 CPU cores): the predicted direction has cosine 0.96 to the target with ``text_first``
and 0.63 with ``vision_first``, where a predictor that ignores the image gets 0.60, i.e.
vision-first had not started grounding.

Padding: instructions of different lengths are left-padded (at the start of the sequence, or
between observation and instruction with ``vision_first``), masked out of attention and not
counted in positions (``vla.decoding.positions``), so a padded sample computes exactly what it
computes alone (tested for two LM families), and the action slots are the last columns of every
row. A learned prompt-end embedding closes every prompt, so the column before the actions is
never padding, even for an empty instruction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from vla.adapters.adapter import Adapter
from vla.audio.audio_encoder import AudioEncoder
from vla.observation_encoder import ObservationEncoder
from vla.prompt_inputs import PromptInputs
from vla.spoken_instruction import SpokenInstructionEncoder, transcript_alignment_loss
from vla.text.filler_words import FillerWords
from vla.text.known_words import KnownWords
from vla.text.normalize import normalize_instruction
from vla.text.text_encoder import TextEncoder
from vla.text.text_tokenizer import TextTokenizer

PromptOrder = Literal["text_first", "vision_first"]
PROMPT_ORDERS = ("text_first", "vision_first")
Instruction = Literal["text", "audio", "both"]
INSTRUCTIONS = ("text", "audio", "both")  # how the instruction reaches the model


class PromptEncoder(nn.Module):
    """:class:`PromptInputs` -> prompt embeddings ``(B, L, D)`` and mask ``(B, L)``.

    Args:
        obs: built observation encoder (cameras + state -> tokens).
        text_tokenizer: the instruction's tokenizer (its ids index ``embed_tokens``).
        embed_tokens: the LM's input embedding, ``(B, L)`` ids -> ``(B, L, D)``.
        hidden_size: D, the LM width.
        max_positions: the LM's context (None: unbounded); longer prompts are refused.
        prompt_order: ``text_first`` or ``vision_first``.
        instruction: ``text`` (typed), ``audio`` (spoken only) or ``both``.
        text_dropout: training-only word dropout probability (``drop_words``).
        text_encoder / text_adapter: a frozen pretrained text encoder and the built token-wise
            adapter from its states to LM tokens, or both None.
        speech: built spoken-instruction encoder (needed unless ``instruction="text"``).
        learned_words: with a word-context text encoder, add to each word's pretrained vector
            the LM's own embedding of that word when the fitted text tokenizer holds it as one
            token (the words of the training instructions), hidden in training with this
            probability; None = off (``learned_word_embeddings``).
        filler_words: in training, insert this many random words on average (Poisson) into each
            instruction, drawn from the text encoder's vocabulary minus the training
            instructions' words (``vla.text.filler_words``); needs ``text_encoder``. 0 = off.
    """

    def __init__(
        self,
        obs: ObservationEncoder,
        text_tokenizer: TextTokenizer,
        embed_tokens: Callable[[Tensor], Tensor],
        hidden_size: int,
        max_positions: int | None,
        prompt_order: PromptOrder = "text_first",
        instruction: Instruction = "text",
        text_dropout: float = 0.0,
        text_encoder: TextEncoder | None = None,
        text_adapter: Adapter | None = None,
        speech: SpokenInstructionEncoder | None = None,
        learned_words: float | None = None,
        filler_words: float = 0.0,
    ) -> None:
        super().__init__()
        if prompt_order not in PROMPT_ORDERS:
            raise ValueError(f"prompt_order={prompt_order!r} must be one of {PROMPT_ORDERS}")
        if instruction not in INSTRUCTIONS:
            raise ValueError(f"instruction={instruction!r} must be one of {INSTRUCTIONS}")
        if (instruction != "text") != (speech is not None):
            raise ValueError(f"instruction={instruction!r} and speech={speech!r} disagree")
        if not 0 <= text_dropout < 1:
            raise ValueError(f"text_dropout={text_dropout} must be in [0, 1) (0 = off)")
        if learned_words is not None:
            if not 0 <= learned_words < 1:
                raise ValueError(
                    f"learned_words={learned_words} must be in [0, 1) (the probability of hiding "
                    "a word's learned embedding in training) or null (off)"
                )
            if text_encoder is None or text_encoder.context != "word":
                raise ValueError(
                    "learned_words adds a learned embedding to each word of a word-context text "
                    "encoder: set model/text_encoder=minilm model.text_encoder.context=word, or "
                    "learned_words=null"
                )
        if filler_words < 0:
            raise ValueError(f"filler_words={filler_words} must be >= 0 (0 = off)")
        if filler_words and text_encoder is None:
            raise ValueError(
                "filler_words draws its words from a pretrained text encoder's vocabulary: set "
                "model/text_encoder=minilm, or filler_words=0"
            )
        self.learned_words = learned_words
        self.filler_words = filler_words
        self._fillers: FillerWords | None = None  # built at the first training batch
        self.known_words = KnownWords(text_tokenizer)
        self.obs = obs
        self.text_tokenizer = text_tokenizer
        self._embed_tokens = embed_tokens  # a bound method of the LM: not a submodule here
        self.max_positions = max_positions
        self.order, self.instruction, self.text_dropout = prompt_order, instruction, text_dropout
        self.text_encoder = text_encoder
        self.text_adapter = text_adapter
        self.speech = speech
        # ends every prompt, so the last prefix column is never padding: it is the position that
        # predicts the first action (autoregressive) or answer token, even for an empty instruction
        self.end = nn.Parameter(torch.randn(1, hidden_size) * 0.02)  # (1, D)

    @property
    def device(self) -> torch.device:
        return self.end.device

    def instruction_inputs(self, inputs: PromptInputs) -> PromptInputs:
        """What of an instruction the model reads: the text unless ``instruction=audio`` (then
        empty strings), the speech when ``instruction`` is ``audio`` or ``both`` (then required).
        Typed text is normalized (``vla.text.normalize``: case, whitespace, outer punctuation)."""
        texts = inputs.texts
        if self.instruction == "text":
            normal = [normalize_instruction(t) for t in texts]  # "Touch it." = "touch it"
            return dataclasses.replace(inputs, texts=normal, audio=None, audio_length=None)
        if inputs.audio is None:
            raise ValueError(
                f"this model takes spoken instructions (instruction={self.instruction!r}): pass "
                "audio (B, N) at the audio encoder's sample rate; to train, collect with "
                "`vla-collect ... speech=true` and set dataset.audio=true"
            )
        if self.instruction == "audio":
            texts = [""] * len(texts)  # the typed text is never read
        return inputs.with_texts([normalize_instruction(t) for t in texts])

    def question_inputs(self, inputs: PromptInputs, questions: Sequence[str]) -> PromptInputs:
        """A question about ``inputs``: read as typed text, with the spoken instruction (if the
        model hears speech) as part of what it is asked about."""
        heard = self.speech is not None and inputs.audio is not None
        return dataclasses.replace(
            inputs,
            texts=questions,
            audio=inputs.audio if heard else None,
            audio_length=inputs.audio_length if heard else None,
        )

    def forward(
        self, inputs: PromptInputs, extra: int, speech: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Prompt embeddings ``(B, L, D)`` and mask ``(B, L)`` (1 = real token), ``extra`` output
        tokens to follow: ``[left-padded text][speech][observation][end]`` or
        ``[observation][text][speech][end]`` (speech only when ``inputs.audio`` is given).
        ``speech``: the clips' ``speech_tokens`` when the caller already has them."""
        images, texts = inputs.images, inputs.texts
        self.obs.check_images(images)
        if isinstance(texts, str) or len(texts) != images.shape[0]:
            raise ValueError(
                f"instructions must be a list of {images.shape[0]} strings (one per image row), "
                f"got {type(texts).__name__} of length {len(texts)}"
            )
        text, text_mask = self.embed_text(texts)  # (B, L, D), (B, L)
        longest = text.shape[1]
        if inputs.audio is not None and speech is None:
            speech = self.speech_tokens(inputs.audio, inputs.audio_length)  # (B, Q, D)
        spoken = 0 if speech is None else speech.shape[1]
        total = self.obs.num_tokens + longest + spoken + 1 + extra
        if self.max_positions is not None and total > self.max_positions:
            i = int(text_mask.sum(1).argmax())
            raise ValueError(
                f"instruction {i} ({texts[i][:40]!r}...) has {longest} tokens: with "
                f"{self.obs.num_tokens} observation and {extra} output tokens the sequence is "
                f"{total} > the LM's context of {self.max_positions} (max_position_embeddings); "
                "shorten it or use an LM with a longer context"
            )
        b = len(texts)
        if speech is not None:  # speech tokens right after the text: one instruction span
            text = torch.cat([text, speech], dim=1)  # (B, L + Q, D)
            ones = torch.ones(b, speech.shape[1], dtype=text_mask.dtype, device=self.device)
            text_mask = torch.cat([text_mask, ones], dim=1)  # (B, L + Q)
        condition = None
        if self.obs.conditioned:  # FiLM encoder / adapter: the pooled instruction conditions it
            condition = self.obs.film_condition(text, text_mask)  # (B, D)
        obs = self.obs(images, inputs.state, condition)  # (B, N, D)
        end = self.end.expand(b, 1, -1)  # (B, 1, D)
        obs_mask = torch.ones(b, obs.shape[1], dtype=torch.long, device=self.device)  # (B, N)
        end_mask = torch.ones(b, 1, dtype=torch.long, device=self.device)  # (B, 1)
        if self.order == "text_first":
            embeds = torch.cat([text, obs, end], dim=1)  # (B, L + N + 1, D)
            mask = torch.cat([text_mask, obs_mask, end_mask], dim=1)  # (B, L + N + 1)
        else:
            embeds = torch.cat([obs, text, end], dim=1)  # (B, N + L + 1, D)
            mask = torch.cat([obs_mask, text_mask, end_mask], dim=1)  # (B, N + L + 1)
        return embeds, mask

    def embed_text(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Left-padded instruction tokens in LM space ``(B, L, D)`` and mask ``(B, L)``: through
        the pretrained text encoder and its adapter when there is one, else the LM's own token
        embeddings of the text tokenizer's ids. In training, filler words are inserted first
        (``filler_words``)."""
        if self.training and self.filler_words:
            texts = self.fillers(texts)
        if self.text_encoder is not None and self.text_adapter is not None:
            states, mask = self.text_encoder(texts)  # (B, L, C), (B, L)
            text = self.text_adapter(states)  # (B, L, D)
            if self.learned_words is not None:
                text = text + self.learned_word_embeddings(texts, mask.shape[1])  # (B, L, D)
        else:
            text, mask = self.embed_token_ids(self.text_tokenizer.encode_batch(texts))
        if self.training and self.text_dropout:
            mask = drop_words(mask, self.text_dropout)  # (B, L)
        return text, mask  # (B, L, D), (B, L)

    def fillers(self, texts: Sequence[str]) -> list[str]:
        """``texts`` with ``filler_words`` random words inserted (``vla.text.filler_words``): the
        text encoder's vocabulary, less every word the fitted text tokenizer holds as one token
        (the training instructions' words)."""
        if self._fillers is None:
            assert self.text_encoder is not None  # checked in __init__
            known = self.known_words.id
            self._fillers = FillerWords.for_text_encoder(
                self.text_encoder, self.filler_words, exclude=lambda w: known(w) >= 0
            )
        return self._fillers(texts)

    def learned_word_embeddings(self, texts: Sequence[str], longest: int) -> Tensor:
        """``(B, L, D)``, left-padded like the word states: the LM's own embedding of each word
        the fitted text tokenizer holds as one token (``KnownWords``), zero for any other word.
        The pretrained vector carries a word's meaning to new words; the learned one grounds
        seen words as fast as end-to-end embeddings. Hidden with probability ``learned_words``
        in training, so the policy also acts on the pretrained vector alone, all a new word has.
        """
        ids = self.known_words(texts, longest).to(self.device)  # (B, L), -1: unknown word
        known = ids >= 0  # (B, L)
        if self.training and self.learned_words:
            known &= torch.rand(known.shape, device=self.device) >= self.learned_words
        embeds = self._embed_tokens(ids.clamp_min(0))  # (B, L, D)
        return embeds * known.unsqueeze(-1).to(embeds.dtype)

    def embed_token_ids(self, ids: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
        """Left-padded token embeddings ``(B, L, D)`` and their mask ``(B, L)`` (1 = real)."""
        b, longest = len(ids), max((len(i) for i in ids), default=0)
        pad = self.text_tokenizer.pad_id
        # padded on the Python side and made a tensor once: a tensor per row cost ~0.5 ms for
        # the quickstart's batch of 64 on a CPU, ~1% of its training step
        rows = [[pad] * (longest - len(seq)) + list(seq) for seq in ids]
        marks = [[0] * (longest - len(seq)) + [1] * len(seq) for seq in ids]
        text_ids = torch.tensor(rows, dtype=torch.long).view(b, longest)  # (B, L)
        text_mask = torch.tensor(marks, dtype=torch.long).view(b, longest)  # (B, L)
        return self._embed_tokens(text_ids.to(self.device)), text_mask.to(self.device)

    def speech_tokens(self, audio: Tensor, audio_length: Tensor | None) -> Tensor:
        """Spoken instructions ``(B, N)`` -> LM-space speech tokens ``(B, Q, D)``."""
        if self.speech is None:
            raise ValueError("audio given, but this model has no audio encoder")
        lengths = audio_length.to(self.device) if audio_length is not None else None
        return self.speech(audio.to(self.device), lengths)  # (B, Q, D)

    def aligned_speech(
        self, audio: Tensor, audio_length: Tensor | None, transcripts: Sequence[str]
    ) -> tuple[Tensor, Tensor]:
        """The clips' speech tokens ``(B, Q, D)`` and their ``transcript_alignment_loss``
        against the LM's own embeddings of ``transcripts`` (``vla.spoken_instruction``)."""
        speech = self.speech_tokens(audio, audio_length)  # (B, Q, D)
        ids = self.text_tokenizer.encode_batch(transcripts)
        words, words_mask = self.embed_token_ids(ids)  # (B, L, D), (B, L)
        return speech, transcript_alignment_loss(speech, words, words_mask, transcripts)


def check_instruction_parts(
    instruction: str,
    audio_encoder: AudioEncoder | None,
    audio_adapter: Callable[..., Adapter] | None,
    speech_alignment: float,
    text_encoder: TextEncoder | None,
    text_adapter: Callable[..., Adapter] | None,
) -> None:
    """Refuse instruction parts that do not go together, before anything is built."""
    if instruction not in INSTRUCTIONS:
        raise ValueError(f"instruction={instruction!r} must be one of {INSTRUCTIONS}")
    speaks = instruction != "text"
    if speaks and (audio_encoder is None or audio_adapter is None):
        raise ValueError(
            f"instruction={instruction!r} needs an audio encoder and adapter: add "
            "model/audio=speech (configs/model/audio/speech.yaml)"
        )
    if not speaks and (audio_encoder is not None or audio_adapter is not None):
        raise ValueError(
            "an audio encoder / adapter was given but instruction='text' never uses them: "
            "set instruction=audio or both, or drop them (model/audio=none)"
        )
    if speech_alignment < 0 or (speech_alignment and not speaks):
        raise ValueError(
            f"speech_alignment={speech_alignment} must be >= 0, and 0 unless the model hears "
            "speech (instruction=audio or both)"
        )
    if (text_encoder is None) != (text_adapter is None):
        raise ValueError(
            "text_encoder and text_adapter go together (model/text_encoder=minilm sets both); "
            f"got text_encoder={type(text_encoder).__name__}, "
            f"text_adapter={'set' if text_adapter else None}"
        )
    if text_encoder is not None and speaks:
        raise ValueError(
            f"a pretrained text_encoder with instruction={instruction!r} is not supported: the "
            "speech alignment targets the LM's own token embeddings; use instruction=text"
        )


def build_text_adapter(
    text_encoder: TextEncoder | None, text_adapter: Callable[..., Adapter] | None, out_dim: int
) -> Adapter | None:
    """The token-wise adapter from the text encoder's states to ``out_dim`` LM tokens."""
    if text_encoder is None or text_adapter is None:
        return None
    n = text_encoder.max_length
    built = text_adapter(in_dim=text_encoder.embed_dim, out_dim=out_dim, num_patches=n)
    if built.num_tokens != n:
        raise ValueError(
            f"text_adapter {type(built).__name__} resamples to {built.num_tokens} tokens; "
            "instructions vary in length and are padded, so use a token-wise adapter "
            "(vla.adapters.MLP or Linear)"
        )
    return built


def drop_words(mask: Tensor, p: float) -> Tensor:
    """``mask`` ``(B, L)`` with each real token dropped (0) with probability ``p``; a row keeps
    at least one of its tokens (its last) so no instruction vanishes entirely."""
    keep = torch.rand(mask.shape, device=mask.device) >= p  # (B, L)
    dropped = mask * keep.to(mask.dtype)  # (B, L)
    empty = (dropped.sum(1) == 0) & (mask.sum(1) > 0)  # (B,) rows that lost every token
    last = torch.zeros_like(mask)  # (B, L)
    last[:, -1] = 1  # left padding: a non-empty row's last column is a real token
    return torch.where(empty[:, None], mask * last, dropped)  # (B, L)
