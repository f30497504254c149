"""Training progress counted in steps, readable on a terminal and in a log file.

Lightning's bars count batches per epoch ("Epoch 9/-2" when a run is bounded by ``max_steps``)
and, off a terminal, write a line per refresh. Training here is bounded by steps, so this bar is
``step / max_steps`` with loss, steps/s and ETA — a tqdm bar on a terminal, and one plain line
every ``interval_s`` seconds (``VLA_PROGRESS_INTERVAL``, default 30 s) anywhere else:

    train: step 1200/3500 (34%), 5.2 steps/s, ETA 7m22s, loss=1.234, action_accuracy=0.41
    validation at step 1250: val/loss=1.201, val/action_accuracy=0.43

Metrics are read only when a line is written (reading them syncs the device), and rates count
from the step the run started at, so a resumed run's ETA is right.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import IO, Any

import lightning as L
from lightning.pytorch.callbacks.progress.progress_bar import ProgressBar

from vla.progress import (
    TTY_MININTERVAL_S,
    format_duration,
    format_rate,
    interval_from_env,
    is_terminal,
)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class StepProgress(ProgressBar):
    """Progress bar over ``trainer.max_steps``.

    Args:
        interval_s: seconds between plain lines off a terminal (None: ``VLA_PROGRESS_INTERVAL``
            or 30 s).
        stream: where to write (default ``sys.stderr``); its ``isatty()`` picks the mode.
        clock: monotonic seconds (a fake one in tests).
    """

    def __init__(
        self,
        interval_s: float | None = None,
        stream: IO[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.interval_s = interval_from_env() if interval_s is None else interval_s
        self.stream, self.clock = stream, clock
        self._enabled = True
        self._bar: Any = None
        self._start_step, self._start_time, self._last = 0, 0.0, 0.0

    # the ProgressBar interface
    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def _out(self) -> IO[str]:
        return self.stream if self.stream is not None else sys.stderr

    @property
    def _tty(self) -> bool:
        return is_terminal(self._out)

    def _active(self, trainer: L.Trainer) -> bool:
        return self._enabled and trainer.is_global_zero

    def metrics_line(self, trainer: L.Trainer, module: L.LightningModule, prefix: str) -> str:
        """``"loss=1.234, ..."``: the logged metrics whose names start with ``prefix`` (training:
        the progress-bar ones; validation: every one)."""
        if prefix == "train/":
            items = self.get_metrics(trainer, module)
        else:
            items = {
                k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(prefix)
            }
        shown = {k.removeprefix(prefix): v for k, v in items.items() if k.startswith(prefix)}
        return ", ".join(f"{k}={_fmt(v)}" for k, v in shown.items())

    def status(self, trainer: L.Trainer, module: L.LightningModule, final: bool = False) -> str:
        step, total = trainer.global_step, trainer.max_steps
        done, elapsed = step - self._start_step, self.clock() - self._start_time
        eta = (total - step) * elapsed / done if done > 0 and total > 0 else None
        parts = [
            f"step {step}/{total} ({step / total:.0%})" if total > 0 else f"step {step}",
            format_rate(done, elapsed, "step"),
            f"in {format_duration(elapsed)}" if final else f"ETA {format_duration(eta)}",
        ]
        metrics = self.metrics_line(trainer, module, "train/")
        rollout = self.metrics_line(trainer, module, "rollout/")  # the latest rollout success
        shown = [m for m in (metrics, rollout and f"rollout {rollout}") if m]
        return "train: " + ", ".join(parts + shown)

    # hooks
    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._start_step, self._start_time = trainer.global_step, self.clock()
        self._last = self._start_time
        if self._active(trainer) and self._tty:
            from tqdm import tqdm

            total = trainer.max_steps if trainer.max_steps > 0 else None
            self._bar = tqdm(
                total=total, initial=trainer.global_step, desc="train", unit="step",
                file=self._out, mininterval=TTY_MININTERVAL_S, dynamic_ncols=True,
            )  # fmt: skip

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if not self._active(trainer):
            return
        now = self.clock()
        if self._bar is not None:
            self._bar.update(trainer.global_step - self._bar.n)
            if now - self._last >= TTY_MININTERVAL_S:  # read metrics (a device sync) seldom
                self._last = now
                self._bar.set_postfix_str(self.metrics_line(trainer, module, "train/"))
        elif now - self._last >= self.interval_s:
            self._last = now
            self._write(self.status(trainer, module))

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._active(trainer) and not trainer.sanity_checking:
            metrics = self.metrics_line(trainer, module, "val/")
            if metrics:
                self._write(f"validation at step {trainer.global_step}: {metrics}")

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not self._active(trainer):
            return
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        else:
            self._write(self.status(trainer, module, final=True))

    def get_metrics(self, trainer: L.Trainer, module: L.LightningModule) -> Mapping[str, Any]:
        items = dict(super().get_metrics(trainer, module))
        items.pop("v_num", None)
        return items

    def _write(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=self._out)
        else:
            self._out.write(line + "\n")
            self._out.flush()
