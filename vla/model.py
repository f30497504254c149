"""The VLA: ``[instruction][observation][prompt end][action tokens]`` through a causal LM.

RT-2 / PaLM-E recipe: camera frames (and proprioception) become LM-space tokens, the instruction is
tokenized, and the LM emits discretized action tokens; the loss covers only the action tokens
(RT-2 / OpenVLA label masking), plus text answers where a batch carries them (co-training).

Prompt order (``prompt_order``): ``text_first`` by default, ``vision_first`` is RT-2 / PaLM-E's
``[observation][instruction]``. In a causal LM only later tokens see earlier ones, so with the
instruction first every image token can attend to it and the visual features become
instruction-conditioned, the role FiLM plays in RT-1 (PaliGemma gets it from a bidirectional
prefix). Measured with ``python benchmarks/model.py --grounding-steps 1000`` (a synthetic "touch
the <colour> block" task, default model, batch 32, lr 1e-3, same seed; ~2.5 min per order on this
machine's 2 CPU cores): the predicted direction has cosine 0.96 to the target with ``text_first``
and 0.63 with ``vision_first``, where a predictor that ignores the image gets 0.60, i.e.
vision-first had not started grounding.

Two decoding modes, chosen by config and trained the way they decode:

- ``autoregressive`` (RT-2): teacher forcing in training; greedy with a KV cache at inference.
- ``parallel`` (OpenVLA-OFT): learned query embeddings sit in the H*D action slots and one
  forward predicts the whole chunk. OFT lets the slots attend to each other bidirectionally; here
  the causal mask is kept so any HF causal LM works unmodified, which loses little because the
  slots' inputs carry no information of their own.

Padding: instructions of different lengths are left-padded (at the start of the sequence, or
between observation and instruction with ``vision_first``), masked out of attention and not
counted in positions, so a padded sample computes exactly what it computes alone (tested for two
LM families), and the action slots are the last columns of every row. A learned prompt-end
embedding closes every prompt, so the column before the actions is never padding, even for an
empty instruction. Sizes are derived from the built parts (adapter dims, vocabulary, action dims).
"""

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from vla import keys, prompt
from vla.action_tokenizer import ActionTokenizer, action_token_names
from vla.adapters.adapter import Adapter
from vla.audio.audio_encoder import AudioEncoder
from vla.bin_loss import bin_cross_entropy
from vla.causal_lm import CausalLM
from vla.decoding import greedy_decode, positions
from vla.history import History, check_history
from vla.hydra_config import target_config, to_plain
from vla.observation_encoder import ObservationEncoder
from vla.spoken_instruction import SpokenInstructionEncoder, aligned_speech
from vla.text.text_encoder import TextEncoder
from vla.text.text_tokenizer import TextTokenizer
from vla.text_answers import generate_text, text_loss
from vla.vision.timm_encoder import TimmEncoder

Decoding = Literal["parallel", "autoregressive"]
DECODINGS = ("parallel", "autoregressive")
PromptOrder = Literal["text_first", "vision_first"]
PROMPT_ORDERS = ("text_first", "vision_first")
Instruction = Literal["text", "audio", "both"]
INSTRUCTIONS = ("text", "audio", "both")  # how the instruction reaches the model
# parts that ``freeze`` can name; every parameter belongs to exactly one
FREEZABLE = ("vision", "adapter", "llm", "token_embeddings", "text_encoder")


class VLA(nn.Module):
    """Vision-language-action model.

    Args:
        vision: built image encoder (patch tokens).
        adapter: partial adapter; called with ``in_dim``, ``out_dim``, ``num_patches``.
        llm: built causal LM (resized here to the text vocabulary + action tokens).
        text_tokenizer: built text tokenizer (the action tokens are added to it here).
        action_tokenizer: built action tokenizer (bounds from the dataset's q01 / q99).
        action_horizon: H, actions predicted per call (a chunk of H * D tokens).
        obs_horizon: T, frames (and states) per observation.
        history: which frames: ``recent`` (the last T) or ``start`` (the episode's first frame,
            then the last T - 1), see :mod:`vla.history`; windows and policies follow it.
        num_cameras: V, camera views per frame.
        state_low / state_high: proprioception q01 / q99 (None for no state input).
        state_dims: which state dimensions the model reads (None: all). Leaving out velocities
            avoids the copycat failure: velocity predicts the next action in expert data, so a
            policy that reads it learns "keep going" and never stops (causal confusion, de Haan
            et al. 2019; Wen et al. 2020).
        decoding: ``parallel`` (one forward per chunk) or ``autoregressive`` (token by token).
        prompt_order: ``text_first`` (instruction, then observation) or ``vision_first``.
        bin_smoothing: Gaussian target smoothing over neighbouring bins, std in bins (0: off).
        freeze: parts whose weights stay fixed, from ``FREEZABLE``.
        audio_encoder: built audio encoder for spoken instructions (``vla.audio``), or None.
        audio_adapter: partial adapter turning its tokens into LM tokens (any ``vla.adapters``).
        instruction: ``text`` (typed), ``audio`` (spoken only: the text is never read) or
            ``both``; audio needs ``audio_encoder`` and ``audio_adapter``. Speech tokens sit
            where the text does (``vla.spoken_instruction``) and join the FiLM conditioning.
        speech_alignment: weight of the speech-to-transcript contrastive loss
            (``vla.spoken_instruction.transcript_alignment_loss``; 0 = off), speech models only.
        text_encoder: built frozen pretrained text encoder (``vla.text.TextEncoder``, e.g.
            MiniLM), or None: the instruction is then read through it instead of the LM's own
            token embeddings (Octo / RT-1); questions of text answers too.
        text_adapter: partial token-wise adapter (``vla.adapters.MLP``) from its states to LM
            tokens; needed with ``text_encoder``.
        text_dropout: in training, hide each instruction token from the model with this
            probability (at least one stays): word dropout (Iyyer et al. 2015), so a policy
            cannot lean on one word of the few wordings it was trained on. 0 = off.

    Weights a part builds frozen (a pretrained text encoder, the base of a LoRA-wrapped LM) stay
    frozen whatever ``freeze`` says: ``freeze`` only adds to them.
    """

    def __init__(
        self,
        vision: TimmEncoder,
        adapter: Callable[..., Adapter],
        llm: CausalLM,
        text_tokenizer: TextTokenizer,
        action_tokenizer: ActionTokenizer,
        action_horizon: int = 1,
        obs_horizon: int = 1,
        history: History = "recent",
        num_cameras: int = 1,
        state_low: Sequence[float] | None = None,
        state_high: Sequence[float] | None = None,
        state_dims: Sequence[int] | None = None,
        decoding: Decoding = "parallel",
        prompt_order: PromptOrder = "text_first",
        bin_smoothing: float = 0.0,
        freeze: Sequence[str] = (),
        audio_encoder: AudioEncoder | None = None,
        audio_adapter: Callable[..., Adapter] | None = None,
        instruction: Instruction = "text",
        speech_alignment: float = 0.0,
        text_encoder: TextEncoder | None = None,
        text_adapter: Callable[..., Adapter] | None = None,
        text_dropout: float = 0.0,
    ) -> None:
        super().__init__()
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
        self.instruction = instruction
        if speech_alignment < 0 or (speech_alignment and not speaks):
            raise ValueError(
                f"speech_alignment={speech_alignment} must be >= 0, and 0 unless the model hears "
                "speech (instruction=audio or both)"
            )
        self.speech_alignment = speech_alignment
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
        if not 0 <= text_dropout < 1:
            raise ValueError(f"text_dropout={text_dropout} must be in [0, 1) (0 = off)")
        self.text_dropout = text_dropout
        for name, value in (
            ("action_horizon", action_horizon),
            ("obs_horizon", obs_horizon),
            ("num_cameras", num_cameras),
        ):
            if value < 1:
                raise ValueError(f"{name}={value} must be >= 1")
        if decoding not in DECODINGS:
            raise ValueError(f"decoding={decoding!r} must be one of {DECODINGS}")
        if prompt_order not in PROMPT_ORDERS:
            raise ValueError(f"prompt_order={prompt_order!r} must be one of {PROMPT_ORDERS}")
        self.prompt_order = prompt_order
        self.history = check_history(history, obs_horizon)
        if bin_smoothing < 0:
            raise ValueError(f"bin_smoothing={bin_smoothing} must be >= 0 (std in bins; 0 = off)")
        self.action_horizon, self.decoding, self.bin_smoothing = (
            action_horizon,
            decoding,
            bin_smoothing,
        )
        self._choices = dict(
            action_horizon=action_horizon,
            obs_horizon=obs_horizon,
            history=history,
            num_cameras=num_cameras,
            state_low=state_low,
            state_high=state_high,
            state_dims=state_dims,
            decoding=decoding,
            prompt_order=prompt_order,
            bin_smoothing=bin_smoothing,
            instruction=instruction,
            speech_alignment=speech_alignment,
            text_dropout=text_dropout,
        )
        self.llm = llm
        self.text_tokenizer = text_tokenizer
        self.action_tokenizer = action_tokenizer
        # explicit ids: the bins become named tokens of the text vocabulary (never "the last N")
        ids = text_tokenizer.add_tokens(action_token_names(action_tokenizer.n_bins))
        action_tokenizer.bind(ids)
        llm.resize(max(text_tokenizer.vocab_size, max(ids) + 1))
        self.obs = ObservationEncoder(
            vision,
            adapter,
            llm.hidden_size,
            num_cameras,
            obs_horizon,
            state_low,
            state_high,
            state_dims,
        )
        self.text_encoder = text_encoder
        self.text_adapter: Adapter | None = None
        if text_encoder is not None and text_adapter is not None:
            n = text_encoder.max_length
            self.text_adapter = text_adapter(
                in_dim=text_encoder.embed_dim, out_dim=llm.hidden_size, num_patches=n
            )
            if self.text_adapter.num_tokens != n:
                raise ValueError(
                    f"text_adapter {type(self.text_adapter).__name__} resamples to "
                    f"{self.text_adapter.num_tokens} tokens; instructions vary in length and are "
                    "padded, so use a token-wise adapter (vla.adapters.MLP or Linear)"
                )
        self.speech: SpokenInstructionEncoder | None = None
        if speaks:
            self.speech = SpokenInstructionEncoder(audio_encoder, audio_adapter, llm.hidden_size)
        self.num_action_tokens = action_horizon * action_tokenizer.action_dim
        self.action_queries: nn.Parameter | None = None
        if decoding == "parallel":
            n, d = self.num_action_tokens, llm.hidden_size
            self.action_queries = nn.Parameter(torch.randn(n, d) * 0.02)  # (H*D, D_lm)
        # ends every prompt, so the last prefix column is never padding: it is the position that
        # predicts the first action (autoregressive) or answer token, even for an empty instruction
        self.prompt_end = nn.Parameter(torch.randn(1, llm.hidden_size) * 0.02)  # (1, D_lm)
        text_ids = torch.arange(llm.vocab_size) < text_tokenizer.vocab_size  # (V,) no spare rows
        text_ids[action_tokenizer.token_ids] = False
        self.register_buffer("text_token_mask", text_ids, persistent=False)
        self.frozen: tuple[str, ...] = ()
        # parameters a part built frozen (pretrained text encoder, LoRA base): never unfrozen
        self._pinned = {n for n, p in self.named_parameters() if not p.requires_grad}
        self.set_frozen(freeze)

    # ------------------------------------------------------------------ structure
    @property
    def device(self) -> torch.device:
        return self.action_tokenizer.low.device

    def model_config(self) -> dict[str, Any]:
        """The Hydra node that rebuilds this model (saved in checkpoints as config.json)."""
        speech = self.speech
        return target_config(
            self,
            vision=self.obs.vision.config,
            adapter={**self.obs.adapter.config, "_partial_": True},
            audio_encoder=speech.encoder.config if speech else None,
            audio_adapter={**speech.adapter.config, "_partial_": True} if speech else None,
            text_encoder=self.text_encoder.export_config() if self.text_encoder else None,
            text_adapter={**self.text_adapter.config, "_partial_": True}
            if self.text_adapter
            else None,
            llm=self.llm.export_config(),
            text_tokenizer=self.text_tokenizer.config,
            action_tokenizer=self.action_tokenizer.config,
            freeze=list(self.frozen),
            **to_plain(self._choices),
        )

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Every parameter under exactly one ``FREEZABLE`` name."""
        emb = {id(p) for p in self.llm.model.get_input_embeddings().parameters()}
        emb |= {id(p) for p in self.llm.model.get_output_embeddings().parameters()}
        llm_params = list(self.llm.parameters())
        own = ("obs.vision.", "llm.", "text_encoder.")
        glue = [p for n, p in self.named_parameters() if not n.startswith(own)]
        encoder = self.text_encoder
        return {
            "vision": list(self.obs.vision.parameters()),
            "adapter": glue,  # adapter, camera / time / state embeddings, queries, prompt end
            "llm": [p for p in llm_params if id(p) not in emb],
            "token_embeddings": [p for p in llm_params if id(p) in emb],
            "text_encoder": list(encoder.parameters()) if encoder is not None else [],
        }

    def set_frozen(self, parts: Sequence[str]) -> None:
        """Freeze ``parts`` and unfreeze the rest (staged training: adapter first, then all)."""
        parts = tuple(to_plain(list(parts)))
        unknown = [p for p in parts if p not in FREEZABLE]
        if unknown:
            raise ValueError(f"freeze={list(parts)} names unknown parts {unknown}: use {FREEZABLE}")
        pinned = {id(p) for n, p in self.named_parameters() if n in self._pinned}
        for name, params in self.parameter_groups().items():
            for p in params:
                p.requires_grad_(name not in parts and id(p) not in pinned)
        self.frozen = parts
        self.train(self.training)

    def train(self, mode: bool = True) -> "VLA":
        super().train(mode)
        if "vision" in self.frozen:  # frozen BatchNorm statistics must not drift either
            self.obs.vision.eval()
        return self

    # ------------------------------------------------------------------ sequences
    def embed_prompt(
        self,
        images: Tensor,
        texts: Sequence[str],
        state: Tensor | None,
        extra: int,
        audio: Tensor | None = None,
        audio_length: Tensor | None = None,
        speech: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Prompt embeddings ``(B, L, D)`` and mask ``(B, L)``, ``extra`` output tokens to follow
        (``vla.prompt.embed_prompt``)."""
        return prompt.embed_prompt(self, images, texts, state, extra, audio, audio_length, speech)

    def _bin_head(self) -> Callable[[Tensor], Tensor]:
        """Hidden states ``(..., D)`` -> logits over the action bins only ``(..., n_bins)``.

        Only the action tokens' output rows are read, so the scores (and any argmax over them)
        can never name another token: constrained decoding by construction.
        """
        weight, bias = self.llm.output_rows(self.action_tokenizer.token_ids)  # (K, D), (K,)

        def head(hidden: Tensor) -> Tensor:
            scores = hidden @ weight.T  # (..., K)
            return scores + bias if bias is not None else scores  # (..., K)

        return head

    def action_logits(self, prefix: Tensor, mask: Tensor, bins: Tensor | None) -> Tensor:
        """Bin logits of every action slot ``(B, H*D, n_bins)``; ``bins`` for teacher forcing."""
        b, n = prefix.shape[0], self.num_action_tokens
        if self.action_queries is not None:
            slots = self.action_queries.expand(b, -1, -1)  # (B, n, D)
        else:  # slot k is fed action token k-1; the prompt end predicts token 0
            slots = self.llm.embed(
                self.action_tokenizer.bins_to_tokens(bins[:, :-1])
            )  # (B, n-1, D)
        x = torch.cat([prefix, slots], dim=1)  # (B, L + n [- 1], D)
        ones = torch.ones(b, slots.shape[1], dtype=mask.dtype, device=mask.device)  # (B, n [- 1])
        full_mask = torch.cat([mask, ones], dim=1)  # (B, L + n [- 1])
        hidden, _ = self.llm(x, full_mask, positions(full_mask))  # (B, L + n [- 1], D)
        return self._bin_head()(hidden[:, -n:])  # (B, n, K)

    # ------------------------------------------------------------------ training
    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Losses of a batch (``vla.keys``): ``loss``, ``action_loss``, ``action_accuracy``,
        and ``text_loss`` when the batch carries ``QUESTION`` / ``ANSWER`` pairs."""
        images, state = batch[keys.IMAGE], batch.get(keys.STATE)
        out: dict[str, Tensor] = {}
        if keys.ACTION in batch:
            actions = batch[keys.ACTION]
            h, d = self.action_horizon, self.action_tokenizer.action_dim
            if actions.ndim != 3 or tuple(actions.shape[1:]) != (h, d):
                raise ValueError(
                    f"actions have shape {tuple(actions.shape)}; expected (B, H={h}, D={d}): "
                    "D comes from the action tokenizer's bounds, H from action_horizon"
                )
            action_mask = batch.get(keys.ACTION_MASK)
            if action_mask is None:
                action_mask = torch.ones(actions.shape[:2], dtype=torch.bool, device=actions.device)
            bins = self.action_tokenizer.encode(actions).flatten(1)  # (B, H*D)
            texts, audio, audio_length = prompt.instruction_inputs(
                self, batch[keys.INSTRUCTION], batch.get(keys.AUDIO), batch.get(keys.AUDIO_LENGTH)
            )
            speech = None
            if audio is not None and self.speech_alignment:  # speech tokens once, two losses
                speech, out["alignment_loss"] = aligned_speech(
                    self, audio, audio_length, batch[keys.INSTRUCTION]
                )  # (B, Q, D), ()
            prefix, mask = self.embed_prompt(
                images, texts, state, bins.shape[1], audio, audio_length, speech
            )
            logits = self.action_logits(prefix, mask, bins)  # (B, H*D, K)
            weight = action_mask.bool().repeat_interleave(d, dim=1).float()  # (B, H*D)
            out["action_loss"] = bin_cross_entropy(logits, bins, weight, self.bin_smoothing)
            hits = (logits.argmax(-1) == bins).float()  # (B, H*D)
            out["action_accuracy"] = (hits * weight).sum() / weight.sum().clamp_min(1)
        if keys.ANSWER in batch:
            if keys.QUESTION not in batch:
                raise ValueError(f"batch has {keys.ANSWER!r} but no {keys.QUESTION!r} prompts")
            questions, answers = batch[keys.QUESTION], batch[keys.ANSWER]
            heard = self.speech is not None and keys.AUDIO in batch  # questions about the speech
            audio = batch[keys.AUDIO] if heard else None
            length = batch.get(keys.AUDIO_LENGTH) if heard else None
            out["text_loss"] = text_loss(self, images, questions, answers, state, audio, length)
        if not out:
            raise ValueError(f"batch has neither {keys.ACTION!r} nor {keys.ANSWER!r}: no loss")
        out["loss"] = out.get("action_loss", 0) + out.get("text_loss", 0)
        if "alignment_loss" in out:
            out["loss"] = out["loss"] + self.speech_alignment * out["alignment_loss"]
        return out

    # ------------------------------------------------------------------ inference
    @torch.inference_mode()
    def predict_action_bins(
        self,
        images: Tensor,
        instructions: Sequence[str],
        state: Tensor | None = None,
        use_cache: bool = True,
        audio: Tensor | None = None,
        audio_length: Tensor | None = None,
    ) -> Tensor:
        """Bin indices of the predicted chunk ``(B, H*D)`` (greedy, action tokens only).
        ``audio`` ``(B, N)`` / ``audio_length`` ``(B,)``: spoken instructions (speech models)."""
        images = torch.as_tensor(images, device=self.device)
        state = torch.as_tensor(state, device=self.device) if state is not None else None
        n = self.num_action_tokens
        texts, audio, audio_length = prompt.instruction_inputs(
            self, instructions, audio, audio_length
        )
        prefix, mask = self.embed_prompt(
            images, texts, state, n, audio, audio_length
        )  # (B, L, D), (B, L)
        if self.decoding == "parallel":
            return self.action_logits(prefix, mask, None).argmax(-1)  # (B, n)
        token_ids = self.action_tokenizer.token_ids  # (K,)
        return greedy_decode(
            self.llm,
            prefix,
            mask,
            n,
            head=self._bin_head(),
            embed_choice=lambda c: self.llm.embed(token_ids[c]),  # (B, D)
            use_cache=use_cache,
        )  # (B, n)

    def predict_action_tokens(
        self,
        images: Tensor,
        instructions: Sequence[str],
        state: Tensor | None = None,
        use_cache: bool = True,
        audio: Tensor | None = None,
        audio_length: Tensor | None = None,
    ) -> Tensor:
        """LM vocabulary ids of the predicted chunk ``(B, H*D)``: always action-token ids."""
        bins = self.predict_action_bins(
            images, instructions, state, use_cache, audio, audio_length
        )  # (B, n)
        return self.action_tokenizer.bins_to_tokens(bins)  # (B, n)

    @torch.inference_mode()
    def predict_actions(
        self,
        images: Tensor,
        instructions: Sequence[str],
        state: Tensor | None = None,
        use_cache: bool = True,
        audio: Tensor | None = None,
        audio_length: Tensor | None = None,
    ) -> Tensor:
        """Continuous actions in env units ``(B, H, D)`` for a batch of observations."""
        bins = self.predict_action_bins(
            images, instructions, state, use_cache, audio, audio_length
        )  # (B, H*D)
        chunk = bins.view(bins.shape[0], self.action_horizon, -1)  # (B, H, D)
        return self.action_tokenizer.decode(chunk)  # (B, H, D)

    def generate_text(
        self,
        images: Tensor,
        questions: Sequence[str],
        state: Tensor | None = None,
        max_new_tokens: int = 32,
        audio: Tensor | None = None,
        audio_length: Tensor | None = None,
    ) -> list[str]:
        """Greedy text answers (co-training path); action tokens are never chosen."""
        return generate_text(self, images, questions, state, max_new_tokens, audio, audio_length)

    # ------------------------------------------------------------------ checkpoints
    def save_pretrained(self, directory: str | Path, norm_stats: dict | None = None) -> Path:
        """Write a checkpoint folder (see ``vla.checkpoint``); returns its path."""
        from vla.checkpoint import save_checkpoint

        return save_checkpoint(self, directory, norm_stats)

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, map_location: str = "cpu", trusted_targets: Sequence[str] = ()
    ) -> "VLA":
        """Rebuild a model saved by ``save_pretrained`` (no pickle, only vla's model parts and
        ``trusted_targets`` are built, every file checked against its SHA-256), in eval mode."""
        from vla.checkpoint import load_checkpoint

        return load_checkpoint(directory, map_location, trusted_targets)
