"""Training losses of a :class:`~vla.model.VLA`: the action tokens' bin cross-entropy, text answers
(co-training), the speech-to-transcript alignment and the hindsight goal loss. A mixin of the
model, as ``vla.model_inference`` is for decoding: ``vla.model`` builds the parts."""

from typing import Any

import torch
from torch import Tensor

from vla import keys
from vla.bin_loss import bin_cross_entropy
from vla.goal_head import goal_loss, goal_target
from vla.prompt import PromptInputs
from vla.text_answers import text_loss


class VLATraining:
    """Training methods of :class:`~vla.model.VLA` (which supplies every attribute used here:
    ``prompt``, ``llm``, ``action_tokenizer``, the slots and the heads)."""

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Losses of a batch (``vla.keys``): ``loss``, ``action_loss``, ``action_accuracy``,
        and ``text_loss`` when the batch carries ``QUESTION`` / ``ANSWER`` pairs."""
        inputs = PromptInputs.from_batch(batch)
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
            read = self.prompt.instruction_inputs(inputs)
            speech = None
            if read.audio is not None and self.speech_alignment:  # speech tokens once, two losses
                speech, out["alignment_loss"] = self.prompt.aligned_speech(
                    read.audio, read.audio_length, batch[keys.INSTRUCTION]
                )  # (B, Q, D), ()
            prefix, mask = self.prompt(read, self.num_slots, speech)
            hidden, goal_states = self.split_slots(self.slot_states(prefix, mask, bins))
            if self.goal_head is not None:
                out["goal_loss"] = self.goal_loss(goal_states, batch)
            if self.goal_conditioning is not None:  # the demonstration's own way still to go
                to_go = goal_target(self.obs, batch[keys.GOAL], batch[keys.STATE], "relative")
                hidden = hidden + self.goal_conditioning(to_go.to(hidden.device))
            logits = self.slot_logits(hidden)  # (B, H*D, K)
            weight = action_mask.bool().repeat_interleave(d, dim=1).float()  # (B, H*D)
            out["action_loss"] = bin_cross_entropy(logits, bins, weight, self.bin_smoothing)
            # max's indices (the first maximum, as argmax's): 0.12 vs 0.41 ms for the quickstart's
            # (64, 16, 256) bf16 scores on a CPU
            hits = (logits.max(-1).indices == bins).float()  # (B, H*D)
            out["action_accuracy"] = (hits * weight).sum() / weight.sum().clamp_min(1)
        if keys.ANSWER in batch:
            if keys.QUESTION not in batch:
                raise ValueError(f"batch has {keys.ANSWER!r} but no {keys.QUESTION!r} prompts")
            asked = self.prompt.question_inputs(inputs, batch[keys.QUESTION])
            out["text_loss"] = text_loss(self.prompt, self.llm, asked, batch[keys.ANSWER])
        if not out:
            raise ValueError(f"batch has neither {keys.ACTION!r} nor {keys.ANSWER!r}: no loss")
        out["loss"] = out.get("action_loss", 0) + out.get("text_loss", 0)
        if "alignment_loss" in out:
            out["loss"] = out["loss"] + self.speech_alignment * out["alignment_loss"]
        if "goal_loss" in out:
            out["loss"] = out["loss"] + self.goal_weight * out["goal_loss"]
        return out

    def goal_loss(self, slot_states: Tensor, batch: dict[str, Any]) -> Tensor:
        """The hindsight goal loss (``vla.goal_head``) of a batch's slot states."""
        if keys.GOAL not in batch:
            raise ValueError(
                f"goal_loss={self.goal_weight} needs the batch's {keys.GOAL!r} (the state at each "
                "sample's episode end; vla.data.WindowDataset adds it when it reads a state)"
            )
        goal = batch[keys.GOAL].to(slot_states.device)  # (B, S)
        target = goal_target(self.obs, goal, batch[keys.STATE], self.goal_target)  # (B, S')
        return goal_loss(self.goal_head(slot_states), target)  # ()
