import io
import subprocess
import sys

import pytest

from vla.progress import (
    ENV_INTERVAL,
    Progress,
    eta_seconds,
    format_duration,
    format_rate,
    format_status,
    interval_from_env,
    progress,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class NotATerminal(io.StringIO):
    def isatty(self) -> bool:
        return False


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_format_duration():
    assert format_duration(0) == "0.0s" and format_duration(4.24) == "4.2s"
    assert format_duration(9.96) == "10s" and format_duration(45.4) == "45s"
    assert format_duration(69) == "1m09s" and format_duration(3599) == "59m59s"
    assert format_duration(2 * 3600 + 3 * 60 + 10) == "2h03m"
    assert format_duration(3 * 86400 + 4 * 3600) == "3d04h"
    assert format_duration(None) == format_duration(float("inf")) == "?"
    assert format_duration(-3) == "0.0s"


def test_eta_and_rate():
    assert eta_seconds(1200, 3000, 46.0) == pytest.approx(69.0)
    assert eta_seconds(0, 3000, 10.0) is None and eta_seconds(5, None, 10.0) is None
    assert eta_seconds(10, 5, 1.0) == 0.0
    assert format_rate(261, 10.0, "episode") == "26.1 episodes/s"
    assert format_rate(1, 4.2, "step") == "4.2 s/step"  # slower than 1/s reads as s per unit
    assert format_rate(0, 0.0, "episode") == "? episodes/s"
    line = format_status("collect", 1200, 3000, 46.0, "episode", "kept=1200")
    assert line == "collect: 1200/3000 episodes (40%), 26.1 episodes/s, ETA 1m09s, kept=1200"
    assert format_status("", 7, None, 2.0, "step") == "7 steps, 3.5 steps/s, 2.0s elapsed"
    assert format_status("x", 1, 1, 1.0, "episode", final=True).endswith(
        "(100%), 1.0 episodes/s, in 1.0s"
    )


def test_off_a_terminal_writes_a_line_per_interval_and_a_final_line():
    clock, stream = FakeClock(), NotATerminal()
    n, step_s, interval = 3000, 0.01, 5.0  # 30 s of work
    with progress(total=n, desc="collect", unit="episode", interval_s=interval, stream=stream,
                  clock=clock) as bar:  # fmt: skip
        assert isinstance(bar, Progress) and bar._bar is None  # plain lines, no tqdm
        for i in range(n):
            clock.now = 1000.0 + (i + 1) * step_s  # no drift from summing 0.01s
            bar.update(1)
            bar.set_postfix(expert_success="100%", kept=i + 1)
    text = stream.getvalue()
    lines = text.splitlines()
    assert "\r" not in text and text.endswith("\n")
    assert len(lines) <= n * step_s / interval + 2
    assert len(lines) >= n * step_s / interval  # one per interval, then the final line
    assert lines[0].startswith("collect: 500/3000 episodes (17%), 100.0 episodes/s, ETA 25s")
    assert lines[-1] == (
        "collect: 3000/3000 episodes (100%), 100.0 episodes/s, in 30s, "
        "expert_success=100%, kept=3000"
    )


def test_iteration_closes_once_and_counts():
    clock, stream = FakeClock(), NotATerminal()
    seen = []
    for x in progress(range(4), desc="d", unit="item", interval_s=1.0, stream=stream, clock=clock):
        clock.now += 0.6
        seen.append(x)
    assert seen == [0, 1, 2, 3]
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3  # after 1.2 s and 2.4 s, then the final line
    assert lines[-1] == "d: 4/4 items (100%), 1.7 items/s, in 2.4s"


def test_disabled_writes_nothing_and_close_is_idempotent():
    stream = NotATerminal()
    bar = progress(total=3, disable=True, interval_s=0, stream=stream)
    bar.update(3)
    bar.close()
    bar.close()
    assert stream.getvalue() == ""
    loud = progress(total=3, interval_s=1e9, stream=stream, clock=FakeClock())
    loud.close()
    loud.close()
    assert len(stream.getvalue().splitlines()) == 1


def test_on_a_terminal_it_is_a_throttled_tqdm_bar():
    from tqdm import tqdm

    stream = Terminal()
    with progress(total=10, desc="evaluate", unit="episode", stream=stream) as bar:
        assert isinstance(bar._bar, tqdm) and bar._bar.mininterval == 0.5
        for _ in range(10):
            bar.update(1)
            bar.set_postfix(success="50%")
    assert "evaluate" in stream.getvalue() and "\r" in stream.getvalue()
    forced = progress(total=2, tty=True, stream=NotATerminal())
    assert forced._bar is not None
    forced.close()


def test_interval_from_the_environment(monkeypatch):
    monkeypatch.setenv(ENV_INTERVAL, "2.5")
    assert interval_from_env() == 2.5 and progress(stream=NotATerminal()).interval_s == 2.5
    monkeypatch.setenv(ENV_INTERVAL, "soon")
    with pytest.raises(ValueError, match=f"{ENV_INTERVAL}='soon' must be a number of seconds"):
        interval_from_env()
    monkeypatch.delenv(ENV_INTERVAL)
    assert interval_from_env() == 30.0
    with pytest.raises(ValueError, match="interval_s=-1 must be >= 0"):
        progress(interval_s=-1, stream=NotATerminal())


def test_importing_it_loads_neither_torch_nor_lightning_nor_tqdm():
    code = (
        "import sys, vla.progress; "
        "print(sorted(m for m in ('torch', 'lightning', 'tqdm') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_postfix_without_refresh_waits_for_the_next_update():
    clock, stream = FakeClock(), NotATerminal()
    bar = progress(total=10, desc="c", unit="episode", interval_s=1.0, stream=stream, clock=clock)
    clock.now += 2
    bar.set_postfix(run=1, refresh=False)
    assert stream.getvalue() == ""
    bar.update(0)  # nothing new, but a line was due
    bar.close()
    lines = stream.getvalue().splitlines()
    assert lines == ["c: 0/10 episodes (0%), ? episodes/s, ETA ?, run=1",
                     "c: 0/10 episodes (0%), ? episodes/s, in 2.0s, run=1"]  # fmt: skip
