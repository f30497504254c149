"""The LightningModule: losses from ``VLA.forward``, AdamW, warmup + cosine, optional EMA."""

from __future__ import annotations

import copy
import math
from typing import Any

import lightning as L
import torch

from vla import keys
from vla.model import VLA
from vla.train_compile import check_compile_mode, compile_available


class VLATrainingModule(L.LightningModule):
    """Optimizes a built :class:`VLA`.

    Args:
        model: the VLA (built with the dataset's normalization bounds).
        lr: peak learning rate of AdamW.
        weight_decay: AdamW decoupled weight decay (not applied to biases, norms, embeddings).
        betas: AdamW betas.
        warmup_steps: linear warmup from 0 to ``lr``.
        max_steps: the cosine decays to ``min_lr_ratio * lr`` at this step (the trainer's).
        min_lr_ratio: floor of the cosine, as a fraction of ``lr``.
        ema_decay: keep an exponential moving average of the weights and buffers (BatchNorm
            statistics; validated and saved in place of the raw model); None disables it.
        random_shift: pad training images by this many pixels (edge replicate) and crop back at
            a random offset per sample (DrQ, Kostrikov et al. 2020; diffusion policy's crop);
            0 disables. Against memorizing scenes with a fixed camera.
        compile: run the LM's decoder through ``torch.compile`` in training steps
            (``CausalLM.compile_training``; validation and inference stay eager). Needs a C++
            compiler on CPUs (inductor); without one training runs eager, with a message.
        compile_vision: the same for the observation encoder (``ObservationEncoder.
            compile_training``: FiLM head, image encoder, adapter): on an AMX CPU the image
            encoder's fwd+bwd was 1.8x faster compiled, on the AMD VM no faster (README).
        compile_mode: ``torch.compile``'s mode for both (``vla.train_compile.COMPILE_MODES``):
            "default", or "max-autotune-no-cudagraphs" (times candidate kernels while compiling:
            slower to compile, a faster step on some CPUs; README), "reduce-overhead" (CUDA
            graphs: for a GPU, whose small steps are launch-bound).
        foreach_optimizer: AdamW updates all parameters with multi-tensor ops (``foreach=True``)
            instead of a Python loop of small ops per parameter; same update rule.
        fused_optimizer: AdamW's fused kernel (``fused=True``, one pass over every parameter;
            same update rule): the quickstart's clip + AdamW step 4.9 -> 2.1 ms on the Intel VM.
            Gradients are then clipped here (``configure_gradient_clipping``), since Lightning's
            mixed-precision plugin refuses to clip for a fused optimizer; under a gradient scaler
            (``16-mixed``), whose unscaling must come first, the ``foreach`` path is used.
    """

    def __init__(
        self,
        model: VLA,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        betas: tuple[float, float] = (0.9, 0.95),
        warmup_steps: int = 100,
        max_steps: int = 2000,
        min_lr_ratio: float = 0.1,
        ema_decay: float | None = None,
        random_shift: int = 0,
        compile: bool = False,
        foreach_optimizer: bool = True,
        compile_vision: bool = False,
        compile_mode: str = "default",
        fused_optimizer: bool = True,
    ):
        super().__init__()
        if lr <= 0 or max_steps < 1 or warmup_steps < 0:
            raise ValueError(
                f"lr={lr} must be > 0, max_steps={max_steps} >= 1, warmup_steps={warmup_steps} >= 0"
            )
        if ema_decay is not None and not 0 < ema_decay < 1:
            raise ValueError(f"ema_decay={ema_decay} must be in (0, 1) or None")
        self.model = model
        self.lr, self.weight_decay, self.betas = lr, weight_decay, tuple(betas)
        self.warmup_steps, self.max_steps, self.min_lr_ratio = warmup_steps, max_steps, min_lr_ratio
        self.ema_decay = ema_decay
        if random_shift < 0:
            raise ValueError(f"random_shift={random_shift} must be >= 0 pixels")
        self.random_shift = random_shift
        self.ema: VLA | None = None
        if ema_decay is not None:
            self.ema = copy.deepcopy(model).eval()
            self.ema.requires_grad_(False)
        self.foreach_optimizer, self.fused_optimizer = foreach_optimizer, fused_optimizer
        check_compile_mode(compile_mode, "optim.compile_mode")
        self.compiled = bool(compile) and compile_available("optim.compile=true")
        if self.compiled:  # after the EMA copy: that one only validates, eagerly
            model.llm.compile_training(mode=compile_mode)
        self.compiled_vision = bool(compile_vision) and compile_available(
            "optim.compile_vision=true"
        )
        if self.compiled_vision:
            model.obs.compile_training(mode=compile_mode)

    @property
    def policy_model(self) -> VLA:
        """The weights to evaluate and save: the EMA copy when there is one."""
        return self.ema if self.ema is not None else self.model

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        if self.random_shift:
            batch = {**batch, keys.IMAGE: shift_images(batch[keys.IMAGE], self.random_shift)}
        out = self.model(batch)
        if self._logs_this_step():
            b = len(batch[keys.INSTRUCTION])
            self.log_dict({f"train/{k}": v for k, v in out.items()}, prog_bar=True, batch_size=b)
            self.log("lr", self.optimizers().param_groups[0]["lr"], prog_bar=False, batch_size=b)
        return out["loss"]

    def _logs_this_step(self) -> bool:
        """Log the training metrics on the steps whose values the loggers write (every
        ``trainer.log_every_n_steps``, as Lightning decides) and the first. Each ``self.log``
        costs ~0.6 ms on a CPU (Lightning moves its result records to the value's device), 2.4 ms
        of a ~75 ms quickstart step for four values that the loggers would drop."""
        trainer = self._trainer
        every = getattr(trainer, "log_every_n_steps", 1) or 1
        return trainer is None or self.global_step == 0 or (self.global_step + 1) % every == 0

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.ema is not None:
            update_ema(self.ema, self.model, self.ema_decay)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        out = self.policy_model(batch)
        b = len(batch[keys.INSTRUCTION])
        self.log_dict({f"val/{k}": v for k, v in out.items()}, sync_dist=True, batch_size=b)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse a run saved before the prompt encoder (its optimizer state is ordered by the
        old parameter layout, so it cannot be resumed exactly)."""
        legacy = [k for k in checkpoint.get("state_dict", {}) if k.startswith("model.obs.")]
        if legacy:
            raise ValueError(
                "this run was saved by an older vla (parameters under model.obs.*, before "
                "vla.prompt.PromptEncoder): its optimizer state does not fit this version. "
                "Resume it with the vla it started with, or start a new run from its weights: "
                "init_from=<out>/checkpoints/last (that folder loads in this version)"
            )

    def configure_optimizers(self) -> dict[str, Any]:
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            if not p.requires_grad:
                continue
            # biases, norms and embeddings are not shrunk (GPT-2 / nanoGPT convention)
            (no_decay if p.ndim < 2 or "embed" in name else decay).append(p)
        groups = [
            {"params": decay, "weight_decay": self.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        if self.fused_optimizer and not self._gradient_scaler():
            kernel = {"fused": True}
        else:
            kernel = {"foreach": self.foreach_optimizer or None}
        optimizer = torch.optim.AdamW(groups, lr=self.lr, betas=self.betas, **kernel)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self._lr_factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def _gradient_scaler(self) -> bool:
        """Whether the trainer (if any) scales the loss (``16-mixed``): gradients are then
        unscaled before clipping, which a fused optimizer would do inside its step instead."""
        plugin = getattr(self._trainer, "precision_plugin", None)
        return getattr(plugin, "scaler", None) is not None

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Lightning's clipping, done here for a fused AdamW (no scaler: see ``fused_optimizer``)."""
        if not optimizer.defaults.get("fused") or not gradient_clip_val:
            return super().configure_gradient_clipping(
                optimizer, gradient_clip_val, gradient_clip_algorithm
            )
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if gradient_clip_algorithm == "value":
            torch.nn.utils.clip_grad_value_(params, gradient_clip_val)
        else:  # "norm", Lightning's default
            torch.nn.utils.clip_grad_norm_(params, gradient_clip_val)

    def _lr_factor(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.max_steps - self.warmup_steps))
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """One EMA step over parameters *and* buffers: BatchNorm running statistics are buffers, so
    an EMA of parameters alone would validate and save with the statistics of the first step
    (timm's ModelEmaV2/V3 average buffers too). Integer buffers (counters, token ids) are copied."""
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p.detach(), 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers(), strict=True):
        if e.is_floating_point():
            e.lerp_(b.detach().to(e.dtype), 1.0 - decay)
        else:
            e.copy_(b)


def shift_images(images: torch.Tensor, pad: int) -> torch.Tensor:
    """Random translation by up to ``pad`` pixels, one offset per sample (all its frames and
    cameras move together, so the geometry between them is kept)."""
    b, t, v, c, h, w = images.shape
    flat = images.reshape(b, t * v * c, h, w).float()  # (B, TVC, H, W)
    padded = torch.nn.functional.pad(
        flat, (pad, pad, pad, pad), mode="replicate"
    )  # (B, TVC, H+2p, W+2p)
    dy = torch.randint(0, 2 * pad + 1, (b,), device=images.device)  # (B,)
    dx = torch.randint(0, 2 * pad + 1, (b,), device=images.device)  # (B,)
    rows = (dy[:, None] + torch.arange(h, device=images.device))[:, None, :, None]  # (B, 1, H, 1)
    cols = (dx[:, None] + torch.arange(w, device=images.device))[:, None, None, :]  # (B, 1, 1, W)
    idx = torch.arange(b, device=images.device)[:, None, None, None]  # (B, 1, 1, 1)
    crop = padded[
        idx, torch.arange(t * v * c, device=images.device)[None, :, None, None], rows, cols
    ]
    return crop.to(images.dtype).reshape(b, t, v, c, h, w)  # (B, T, V, 3, H, W)
