"""Training progress off a terminal: a plain line every interval, counted in steps."""

import io
from types import SimpleNamespace

from vla.training.step_progress import StepProgress


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def fake_trainer(**kw):
    base = dict(global_step=0, max_steps=100, is_global_zero=True, loggers=[],
                progress_bar_metrics={}, callback_metrics={}, sanity_checking=False)  # fmt: skip
    return SimpleNamespace(**{**base, **kw})


def test_plain_lines_every_interval_with_rate_eta_and_loss():
    out, clock = io.StringIO(), Clock()
    bar = StepProgress(interval_s=10, stream=out, clock=clock)
    trainer = fake_trainer(global_step=20)  # resumed at step 20: rates count from there
    bar.on_train_start(trainer, None)
    for step in range(21, 101):
        clock.t += 0.5  # 2 steps/s
        trainer.global_step = step
        trainer.progress_bar_metrics = {"train/loss": 1.0 / step, "lr": 0.001}
        bar.on_train_batch_end(trainer, None, None, None, step)
        if step == 60:
            trainer.callback_metrics = {"val/loss": 0.25, "train/loss": 9.0}
            bar.on_validation_end(trainer, None)
    bar.on_train_end(trainer, None)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert len(lines) == 40 / 10 + 1 + 1  # one per 10 s of 40 s, the validation, the final
    assert lines[0] == "train: step 40/100 (40%), 2.0 steps/s, ETA 30s, loss=0.025"
    assert "validation at step 60: loss=0.25" in lines
    assert lines[-1] == "train: step 100/100 (100%), 2.0 steps/s, in 40s, loss=0.01"
    trainer.callback_metrics["rollout/success_rate"] = 0.8  # the rollout callback's last number
    assert bar.status(trainer, None).endswith("loss=0.01, rollout success_rate=0.8")


def test_other_ranks_and_disabled_bars_write_nothing():
    out = io.StringIO()
    bar = StepProgress(interval_s=0, stream=out, clock=Clock())
    trainer = fake_trainer(is_global_zero=False)
    bar.on_train_start(trainer, None)
    bar.on_train_batch_end(trainer, None, None, None, 0)
    bar.on_train_end(trainer, None)
    bar.disable()
    bar.on_train_end(fake_trainer(), None)
    assert out.getvalue() == ""
