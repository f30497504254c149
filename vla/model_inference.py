"""Inference of a :class:`~vla.model.VLA`: action chunks (greedy or drawn), the goal head's
expected end state, and text answers. A mixin of the model: ``vla.model`` builds the parts and
the training losses, this module reads them out at inference (no gradients)."""

import torch
from torch import Tensor

from vla.decoding import check_temperature, greedy_decode, pick
from vla.goal_head import goal_in_state_units
from vla.prompt import PromptInputs
from vla.text_answers import generate_text


class VLAInference:
    """Inference methods of :class:`~vla.model.VLA` (which supplies every attribute used here:
    ``prompt``, ``llm``, ``action_tokenizer``, ``decoding``, the slots and the heads)."""

    @torch.inference_mode()
    def predict_action_bins(
        self,
        inputs: PromptInputs,
        use_cache: bool = True,
        temperature: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Bin indices of the predicted chunk ``(B, H*D)`` (action tokens only): greedy, or drawn
        from the bins' distribution at ``temperature`` > 0 (``vla.decoding.pick``, with
        ``generator``); ``use_cache``: the KV cache of autoregressive decoding."""
        check_temperature(temperature)
        n = self.num_action_tokens
        prefix, mask = self._prefix(inputs)  # (B, L, D), (B, L)
        if self.decoding == "parallel":
            logits = self.action_logits(prefix, mask, None, inputs.state)  # (B, n, K)
            return pick(logits, temperature, generator)  # (B, n)
        token_ids = self.action_tokenizer.token_ids  # (K,)
        return greedy_decode(
            self.llm,
            prefix,
            mask,
            n,
            head=self._bin_head(),
            embed_choice=lambda c: self.llm.embed(token_ids[c]),  # (B, D)
            use_cache=use_cache,
            temperature=temperature,
            generator=generator,
        )  # (B, n)

    @torch.inference_mode()
    def predict_actions(
        self,
        inputs: PromptInputs,
        use_cache: bool = True,
        temperature: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Continuous actions in env units ``(B, H, D)`` for a batch of observations (greedy, or
        drawn at ``temperature``: :meth:`predict_action_bins`)."""
        bins = self.predict_action_bins(inputs, use_cache, temperature, generator)  # (B, H*D)
        chunk = bins.view(bins.shape[0], self.action_horizon, -1)  # (B, H, D)
        return self.action_tokenizer.decode(chunk)  # (B, H, D)

    @torch.inference_mode()
    def predict_goal(self, inputs: PromptInputs) -> Tensor:
        """Where the policy expects its episode to end ``(B, S')``: the goal head's prediction
        of the final state's ``state_dims``, in the state's own units (a model trained with
        ``goal_loss`` > 0; e.g. which object a touch policy is heading for)."""
        if self.goal_head is None:
            raise ValueError("this model has no goal head: it was trained with goal_loss=0")
        prefix, mask = self._prefix(inputs)  # (B, L, D), (B, L)
        _, goal_states = self.split_slots(self.slot_states(prefix, mask, None))
        goal = self.goal_head(goal_states)  # (B, S') normalized
        return goal_in_state_units(self.obs, goal, inputs.state, self.goal_target)  # (B, S')

    def _prefix(self, inputs: PromptInputs) -> tuple[Tensor, Tensor]:
        """The prompt's embeddings ``(B, L, D)`` and mask ``(B, L)``, room left for the slots."""
        read = self.prompt.instruction_inputs(inputs.to(self.device))
        return self.prompt(read, self.num_slots)

    def generate_text(self, inputs: PromptInputs, max_new_tokens: int = 32) -> list[str]:
        """Greedy answers to the questions in ``inputs.texts`` (co-training path); action tokens
        are never chosen. A speech model also hears ``inputs.audio``."""
        asked = self.prompt.question_inputs(inputs.to(self.device), inputs.texts)
        text_ids = self.text_token_mask.nonzero().squeeze(1)  # (K_text,)
        return generate_text(self.prompt, self.llm, text_ids, asked, max_new_tokens)
