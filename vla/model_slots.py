"""The LM's query slots of a :class:`~vla.model.VLA`: their output states after the prompt, the
goal query's split from the action slots', and the action bins' logits read from them. A mixin of
the model, shared by its training losses (``vla.model_training``) and its inference
(``vla.model_inference``); ``vla.model`` builds the slots and the heads."""

from collections.abc import Callable

import torch
from torch import Tensor

from vla.decoding import positions
from vla.goal_head import goal_to_go


class VLASlots:
    """Slot methods of :class:`~vla.model.VLA` (which supplies every attribute used here: ``llm``,
    ``action_tokenizer``, ``action_queries``, ``goal_query``, ``slot_split`` and the goal parts)."""

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

    def action_logits(
        self, prefix: Tensor, mask: Tensor, bins: Tensor | None, state: Tensor | None = None
    ) -> Tensor:
        """Bin logits of every action slot ``(B, H*D, n_bins)``; ``bins`` for teacher forcing;
        ``state`` ``(B, T, S)`` for a model that acts on its predicted goal (``act_on_goal``)."""
        hidden, goal_states = self.split_slots(self.slot_states(prefix, mask, bins))
        if self.goal_conditioning is not None:
            if state is None:
                raise ValueError("act_on_goal: action_logits needs the observation's state")
            to_go = goal_to_go(self.obs, self.goal_head(goal_states), state, self.goal_target)
            hidden = hidden + self.goal_conditioning(to_go)  # (B, slots, D)
        return self.slot_logits(hidden)  # (B, H*D, K)

    def slot_states(self, prefix: Tensor, mask: Tensor, bins: Tensor | None) -> Tensor:
        """The LM's output states at the slots ``(B, slots, D)`` (``num_slots``; the goal query
        first when there is one: :meth:`split_slots`)."""
        b = prefix.shape[0]
        if self.action_queries is not None:
            slots = self.action_queries.expand(b, -1, -1)  # (B, n, D)
            if self.goal_query is not None:
                slots = torch.cat([self.goal_query.expand(b, -1, -1), slots], dim=1)  # (B, 1+n, D)
        else:  # slot k is fed action token k-1; the prompt end predicts token 0
            slots = self.llm.embed(
                self.action_tokenizer.bins_to_tokens(bins[:, :-1])
            )  # (B, n-1, D)
        x = torch.cat([prefix, slots], dim=1)  # (B, L + n [- 1], D)
        ones = torch.ones(b, slots.shape[1], dtype=mask.dtype, device=mask.device)  # (B, n [- 1])
        full_mask = torch.cat([mask, ones], dim=1)  # (B, L + n [- 1])
        hidden, _ = self.llm(x, full_mask, positions(full_mask))  # (B, L + n [- 1], D)
        return hidden[:, -self.num_slots :]  # (B, slots, D): the prompt end predicts token 0

    def split_slots(self, hidden: Tensor) -> tuple[Tensor, Tensor]:
        """Slot states ``(B, slots, D)`` -> the action slots' ``(B, n, D)`` and the states the
        goal head reads: the goal query's ``(B, 1, D)``, or without one the action slots'."""
        if self.goal_query is None:
            return hidden, hidden
        return hidden[:, 1:], hidden[:, :1]

    def slot_logits(self, hidden: Tensor) -> Tensor:
        """Slot states ``(B, slots, D)`` -> bin logits of every action token ``(B, H*D, K)``."""
        if self.slot_split is not None:
            hidden = self.slot_split(hidden)  # (B, H * D, D_lm)
        return self._bin_head()(hidden)  # (B, H*D, K)
