"""The VLA: ``[instruction][observation][prompt end][action tokens]`` through a causal LM.

RT-2 / PaLM-E recipe: camera frames (and proprioception) become LM-space tokens, the instruction is
tokenized, and the LM emits discretized action tokens; the loss covers only the action tokens
(RT-2 / OpenVLA label masking), plus text answers where a batch carries them (co-training).

The prompt (instruction, observation, speech, order, padding) is ``vla.prompt``'s
:class:`~vla.prompt.PromptEncoder`; this module builds the parts and the action slots,
``vla.model_slots`` reads the slots' states and bin logits, ``vla.model_inference`` the decoding,
``vla.model_training`` the training losses.

Two decoding modes, chosen by config and trained the way they decode:

- ``autoregressive`` (RT-2): teacher forcing in training; greedy with a KV cache at inference.
- ``parallel`` (OpenVLA-OFT): learned query embeddings sit in the H*D action slots (or H, one per
  step, with ``action_slots="step"``: ``vla.step_slots``) and one forward predicts the whole
  chunk. OFT lets the slots attend to each other bidirectionally; here the causal mask is kept
  so any HF causal LM works unmodified, which loses little because the slots' inputs carry no
  information of their own.
"""

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from vla.action_tokenizer import ActionTokenizer, action_token_names
from vla.adapters.adapter import Adapter
from vla.audio.audio_encoder import AudioEncoder
from vla.causal_lm import CausalLM
from vla.decoding import ActionSlots, Decoding, check_decoding
from vla.freezing import freeze_parts, parameter_groups
from vla.goal_head import (
    GoalTarget,
    build_goal_parts,
)
from vla.history import History, check_history
from vla.hydra_config import target_config, to_plain
from vla.model_inference import VLAInference
from vla.model_slots import VLASlots
from vla.model_training import VLATraining
from vla.observation_encoder import ObservationEncoder
from vla.prompt import (
    Instruction,
    PromptEncoder,
    PromptOrder,
    build_text_adapter,
    check_instruction_parts,
)
from vla.spoken_instruction import SpokenInstructionEncoder
from vla.step_slots import StepSlotSplit
from vla.text.text_encoder import TextEncoder
from vla.text.text_tokenizer import TextTokenizer
from vla.vision.timm_encoder import TimmEncoder


class VLA(VLASlots, VLAInference, VLATraining, nn.Module):
    """Vision-language-action model (its inference methods: ``vla.model_inference``).

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
        state_noise: training only: std of Gaussian noise on the normalized state (q01..q99 ->
            [-1, 1]); against reading the demonstration off the exact hand position (0 = off).
        state_dropout: training only: hide a sample's whole state with this probability (its
            token keeps only the time embedding): the images have to say where to go (0 = off).
        film_pooling: how the instruction's tokens become the FiLM conditioning vector, one of
            ``vla.film_pooling.FILM_POOLINGS`` (``mean`` and learned poolings).
        film_head: ``mlp``, ``linear`` or ``product``: how the pooled instruction becomes the
            FiLM gamma / beta (``vla.observation_encoder.FILM_HEADS``; linear: each word adds its
            own; product: each word's own gains multiply).
        film_cameras: the cameras (indices on the V axis) the FiLM conditions; the others see
            the scene instruction-blind, and the LM binds words to what they show (None: all).
        camera_dropout: training only: hide each camera of a sample with this probability (one
            is always kept), so no camera is ignored for another (0 = off).
        decoding: ``parallel`` (one forward per chunk) or ``autoregressive`` (token by token).
        action_slots: parallel decoding's query slots: ``token`` (one per action token, H * D)
            or ``step`` (one per action step, H: a learned linear map splits each slot's output
            into its D tokens' states). ``step`` shortens the LM's sequence by H * (D - 1).
        prompt_order: ``text_first`` (instruction, then observation) or ``vision_first``.
        bin_smoothing: Gaussian target smoothing over neighbouring bins, std in bins (0: off).
        goal_loss: weight of the hindsight goal loss (``vla.goal_head``): the action slots'
            states also predict the state at the end of the sample's episode (the batch's
            ``GOAL``), so the grounding learns where the instruction points; training only,
            needs a state input (0 = off, no head built).
        goal_target: what the goal head predicts: ``absolute`` (the final state), ``relative``
            (the final state minus the sample's latest one: the displacement still to go) or
            ``both`` (the two side by side).
        act_on_goal: the actions also read the displacement still to go to the episode's end
            (``vla.goal_head.GoalConditioning``): the demonstration's in training (with Gaussian
            noise of std ``goal_input_noise``, normalized units), the goal head's prediction
            when acting. Needs ``goal_loss`` > 0 and parallel decoding.
        goal_query: the goal head reads a query slot of its own, placed before the action
            slots (they attend to it), instead of the mean of the action slots' states: the
            goal regression shapes one LM position, not the states the actions are read from.
            Needs ``goal_loss`` > 0 and parallel decoding.
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
        learned_words: with a word-context ``text_encoder``: each word of the training
            instructions also gets a learned embedding, hidden in training with this
            probability (``PromptEncoder.learned_word_embeddings``); None = off.
        filler_words: with a ``text_encoder``: in training, insert this many random words on
            average into each instruction, from the encoder's vocabulary minus the training
            instructions' words (``vla.text.filler_words``), so an unseen word reads as noise.
            0 = off.

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
        state_noise: float = 0.0,
        film_pooling: str = "mean",
        camera_dropout: float = 0.0,
        state_dropout: float = 0.0,
        film_head: str = "mlp",
        film_cameras: Sequence[int] | None = None,
        decoding: Decoding = "parallel",
        action_slots: ActionSlots = "token",
        prompt_order: PromptOrder = "text_first",
        bin_smoothing: float = 0.0,
        goal_loss: float = 0.0,
        goal_target: GoalTarget = "absolute",
        act_on_goal: bool = False,
        goal_input_noise: float = 0.1,
        goal_query: bool = False,
        freeze: Sequence[str] = (),
        audio_encoder: AudioEncoder | None = None,
        audio_adapter: Callable[..., Adapter] | None = None,
        instruction: Instruction = "text",
        speech_alignment: float = 0.0,
        text_encoder: TextEncoder | None = None,
        text_adapter: Callable[..., Adapter] | None = None,
        text_dropout: float = 0.0,
        learned_words: float | None = None,
        filler_words: float = 0.0,
    ) -> None:
        super().__init__()
        check_instruction_parts(
            instruction, audio_encoder, audio_adapter, speech_alignment, text_encoder, text_adapter
        )
        speaks = instruction != "text"
        self.speech_alignment = speech_alignment
        for name, value in (
            ("action_horizon", action_horizon),
            ("obs_horizon", obs_horizon),
            ("num_cameras", num_cameras),
        ):
            if value < 1:
                raise ValueError(f"{name}={value} must be >= 1")
        check_decoding(decoding, action_slots)
        self.history = check_history(history, obs_horizon)
        if bin_smoothing < 0:
            raise ValueError(f"bin_smoothing={bin_smoothing} must be >= 0 (std in bins; 0 = off)")
        self.action_horizon, self.decoding = action_horizon, decoding
        self.bin_smoothing = bin_smoothing
        self._choices = dict(
            action_horizon=action_horizon,
            obs_horizon=obs_horizon,
            history=history,
            num_cameras=num_cameras,
            state_low=state_low,
            state_high=state_high,
            state_dims=state_dims,
            state_noise=state_noise,
            film_pooling=film_pooling,
            camera_dropout=camera_dropout,
            state_dropout=state_dropout,
            film_head=film_head,
            film_cameras=film_cameras,
            decoding=decoding,
            action_slots=action_slots,
            prompt_order=prompt_order,
            bin_smoothing=bin_smoothing,
            goal_loss=goal_loss,
            goal_target=goal_target,
            act_on_goal=act_on_goal,
            goal_input_noise=goal_input_noise,
            goal_query=goal_query,
            instruction=instruction,
            speech_alignment=speech_alignment,
            text_dropout=text_dropout,
            learned_words=learned_words,
            filler_words=filler_words,
        )
        self.llm = llm
        self.action_tokenizer = action_tokenizer
        # explicit ids: the bins become named tokens of the text vocabulary (never "the last N")
        ids = text_tokenizer.add_tokens(action_token_names(action_tokenizer.n_bins))
        action_tokenizer.bind(ids)
        llm.resize(max(text_tokenizer.vocab_size, max(ids) + 1))
        # built in this order (obs, text adapter, speech, queries, prompt end): the random init of
        # a seed is what it was before these parts moved into the prompt encoder
        obs = ObservationEncoder(
            vision,
            adapter,
            llm.hidden_size,
            num_cameras,
            obs_horizon,
            state_low,
            state_high,
            state_dims,
            state_noise,
            film_pooling,
            camera_dropout,
            film_head,
            film_cameras,
            state_dropout,
        )
        built_text_adapter = build_text_adapter(text_encoder, text_adapter, llm.hidden_size)
        speech = None
        if speaks:
            speech = SpokenInstructionEncoder(audio_encoder, audio_adapter, llm.hidden_size)
        self.num_action_tokens = action_horizon * action_tokenizer.action_dim
        self.action_queries: nn.Parameter | None = None
        self.slot_split: StepSlotSplit | None = None
        if decoding == "parallel":
            n, d = self.num_action_tokens, llm.hidden_size
            if action_slots == "step":
                n = action_horizon
                self.slot_split = StepSlotSplit(d, action_tokenizer.action_dim)
            self.action_queries = nn.Parameter(torch.randn(n, d) * 0.02)  # (slots, D_lm)
        self.prompt = PromptEncoder(
            obs,
            text_tokenizer,
            llm.embed,
            llm.hidden_size,
            llm.max_positions,
            prompt_order,
            instruction,
            text_dropout,
            text_encoder,
            built_text_adapter,
            speech,
            learned_words,
            filler_words,
        )
        # built last: a seed's random init of every other part is what it is without the head
        self.goal_weight, self.goal_target = goal_loss, goal_target
        self.goal_head, self.goal_conditioning, self.goal_query = build_goal_parts(
            goal_loss,
            int(obs.state_dims.numel()) if obs.state_dim else 0,
            llm.hidden_size,
            goal_target,
            act_on_goal,
            goal_input_noise,
            goal_query,
            decoding,
        )  # the head (D_lm -> S'), act_on_goal's conditioning, the goal query (1, D_lm)
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

    @property
    def num_slots(self) -> int:
        """LM positions after the prompt: parallel query slots (the goal query's included), or
        the decoded action tokens."""
        if self.action_queries is None:
            return self.num_action_tokens
        return int(self.action_queries.shape[0]) + (self.goal_query is not None)

    @property
    def obs(self) -> ObservationEncoder:
        """The observation encoder (cameras, state): ``obs.num_cameras``, ``obs.vision`` ..."""
        return self.prompt.obs

    @property
    def text_tokenizer(self) -> TextTokenizer:
        """The instruction's tokenizer, the action tokens added (the prompt encoder's)."""
        return self.prompt.text_tokenizer

    @property
    def speech(self) -> SpokenInstructionEncoder | None:
        return self.prompt.speech

    @property
    def text_encoder(self) -> TextEncoder | None:
        return self.prompt.text_encoder

    @property
    def instruction(self) -> Instruction:
        return self.prompt.instruction

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
            text_adapter={**self.prompt.text_adapter.config, "_partial_": True}
            if self.prompt.text_adapter
            else None,
            llm=self.llm.export_config(),
            text_tokenizer=self.text_tokenizer.config,
            action_tokenizer=self.action_tokenizer.config,
            freeze=list(self.frozen),
            **to_plain(self._choices),
        )

    def normalization_bounds(self) -> dict[str, dict[str, Any]]:
        """The q01 / q99 bounds the model normalizes with: ``action`` (its bins) and ``state``."""
        at = self.action_tokenizer
        bounds: dict[str, dict[str, Any]] = {"action": {"q01": at.low, "q99": at.high}}
        if self.obs.state_dim:
            bounds["state"] = {"q01": self.obs.state_low, "q99": self.obs.state_high}
        return bounds

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Every parameter under exactly one ``FREEZABLE`` name (``vla.freezing``)."""
        return parameter_groups(self)

    def set_frozen(self, parts: Sequence[str]) -> None:
        """Freeze ``parts`` and unfreeze the rest (staged training: adapter first, then all);
        parameters a part built frozen stay frozen."""
        self.frozen = freeze_parts(self, parts, self._pinned)
        self.train(self.training)

    def train(self, mode: bool = True) -> "VLA":
        super().train(mode)
        if "vision" in self.frozen:  # frozen BatchNorm statistics must not drift either
            self.obs.vision.eval()
        return self
