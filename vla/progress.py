"""Progress that reads well on a terminal and in a log file (CI, ``make ... 2>&1 | tee``).

On a terminal, ``progress(...)`` is a tqdm bar redrawn at most every 0.5 s. Anywhere else
(a pipe, a file, a captured stream) it writes one plain line every ``interval_s`` seconds and
a last line when it closes, never a carriage return:

    collect vla/Touch-v0: 1200/3000 episodes (40%), 26.1 episodes/s, ETA 1m09s, expert_success=98%

tqdm off a terminal writes a full bar per refresh: a 3,000-episode collection filled megabytes
of CI log with them. The line interval defaults to 30 s; set ``VLA_PROGRESS_INTERVAL`` (seconds)
to change it, e.g. ``VLA_PROGRESS_INTERVAL=5 vla-collect ... > collect.log 2>&1``.

Progress goes to ``sys.stderr`` (as tqdm's does); whether it is a terminal decides the mode.
``format_duration``, ``eta_seconds``, ``format_rate`` and ``format_status`` are the same pieces
for other progress reports (a training callback's "step, loss, steps/s, ETA" line). This module
imports no torch or lightning.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any, Generic, TypeVar

ENV_INTERVAL = "VLA_PROGRESS_INTERVAL"  # seconds between plain lines off a terminal
DEFAULT_INTERVAL_S = 30.0
TTY_MININTERVAL_S = 0.5  # tqdm redraws at most this often on a terminal

T = TypeVar("T")


def format_duration(seconds: float | None) -> str:
    """``"4.2s"``, ``"45s"``, ``"1m09s"``, ``"2h03m"``, ``"3d04h"``; ``"?"`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    if seconds < 9.95:  # a tenth of a second still tells something here
        return f"{max(0.0, seconds):.1f}s"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h:02d}h"


def eta_seconds(done: float, total: float | None, elapsed_s: float) -> float | None:
    """Seconds left at the average rate so far; None when it cannot be told yet."""
    if total is None or done <= 0 or elapsed_s <= 0:
        return None
    return max(0.0, total - done) * elapsed_s / done


def plural(unit: str, n: float) -> str:
    """``unit`` for one, ``unit + "s"`` otherwise (``"it"`` and words ending in s stay)."""
    return unit if n == 1 or unit == "it" or unit.endswith("s") else unit + "s"


def format_rate(done: float, elapsed_s: float, unit: str = "it") -> str:
    """``"26.1 episodes/s"``, or ``"4.2 s/step"`` when slower than one per second."""
    if done <= 0 or elapsed_s <= 0:
        return f"? {plural(unit, 2)}/s"
    rate = done / elapsed_s
    if rate >= 1:
        return f"{rate:.1f} {plural(unit, 2)}/s"
    return f"{1 / rate:.1f} s/{unit}"


def format_postfix(postfix: Mapping[str, Any]) -> str:
    """``"loss=0.123, kept=40"``, as tqdm writes a postfix."""
    return ", ".join(f"{k}={v}" for k, v in postfix.items())


def format_status(
    desc: str,
    done: float,
    total: float | None,
    elapsed_s: float,
    unit: str = "it",
    postfix: str = "",
    final: bool = False,
) -> str:
    """One progress line: ``"<desc>: 1200/3000 episodes (40%), 26.1 episodes/s, ETA 1m09s, ..."``.

    ``final=True`` gives the elapsed time instead of the ETA (``"..., in 1m55s"``).
    """
    n = int(done) if float(done).is_integer() else round(done, 2)
    if total:
        count = f"{n}/{int(total)} {plural(unit, total)} ({done / total:.0%})"
    else:
        count = f"{n} {plural(unit, done)}"
    if final:
        timing = f"in {format_duration(elapsed_s)}"
    elif total:
        timing = f"ETA {format_duration(eta_seconds(done, total, elapsed_s))}"
    else:
        timing = f"{format_duration(elapsed_s)} elapsed"
    parts = [count, format_rate(done, elapsed_s, unit), timing, *([postfix] if postfix else [])]
    return f"{desc + ': ' if desc else ''}{', '.join(parts)}"


def interval_from_env(default: float = DEFAULT_INTERVAL_S) -> float:
    """``VLA_PROGRESS_INTERVAL`` in seconds (>= 0), else ``default``."""
    raw = os.environ.get(ENV_INTERVAL, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also nan
        raise ValueError(
            f"{ENV_INTERVAL}={raw!r} must be a number of seconds >= 0, e.g. {ENV_INTERVAL}=30"
        )
    return value


class Progress(Generic[T]):
    """A tqdm-like progress report: ``update``, ``set_postfix``, ``close``, ``with``, ``for``.

    A tqdm bar on a terminal, a plain line every ``interval_s`` off one (``progress`` is the
    same class).

    Args:
        iterable: items to yield (``for x in progress(items)``); or None and call ``update``.
        total: expected count (defaults to ``len(iterable)``); None: no percentage or ETA.
        desc: what is progressing ("collect vla/Touch-v0").
        unit: singular name of one item ("episode"); plurals add an "s".
        interval_s: seconds between plain lines (None: ``VLA_PROGRESS_INTERVAL`` or 30 s).
        disable: write nothing.
        stream: where to write (default ``sys.stderr``); its ``isatty()`` picks the mode.
        tty: force the mode (True: tqdm bar, False: plain lines).
        clock: seconds, monotonic: the plain lines' time source.
    """

    def __init__(
        self,
        iterable: Iterable[T] | None = None,
        total: float | None = None,
        desc: str = "",
        unit: str = "it",
        interval_s: float | None = None,
        disable: bool = False,
        stream: IO[str] | None = None,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.n: float = 0
        self.disable, self.closed = disable, False
        self.stream = stream if stream is not None else sys.stderr
        self.tty = is_terminal(self.stream) if tty is None else tty
        self.interval_s = interval_from_env() if interval_s is None else interval_s
        if self.interval_s < 0:
            raise ValueError(f"interval_s={interval_s} must be >= 0 seconds")
        self.clock = clock
        self._postfix = ""
        self._start = self._last_line = clock()
        self._bar: Any = None  # a tqdm bar on a terminal
        if self.tty and not disable:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, desc=desc, unit=unit, file=self.stream,
                mininterval=TTY_MININTERVAL_S, dynamic_ncols=True,
            )  # fmt: skip

    @property
    def elapsed_s(self) -> float:
        return self.clock() - self._start

    def update(self, n: float = 1) -> None:
        """``n`` more done (0: nothing new, but a line is written if one is due)."""
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        else:
            self._maybe_write()

    def set_postfix(
        self, ordered_dict: Mapping[str, Any] | None = None, refresh: bool = True, **kwargs: Any
    ) -> None:
        """``"k=v, ..."`` after the counts; ``refresh=False``: shown from the next ``update``."""
        self.set_postfix_str(format_postfix({**(ordered_dict or {}), **kwargs}), refresh)

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self._postfix = s
        if self._bar is not None:
            self._bar.set_postfix_str(s, refresh=False)  # drawn at the next (throttled) update
        elif refresh:
            self._maybe_write()

    def status(self, final: bool = False) -> str:
        """The plain line for now (what is written off a terminal)."""
        return format_status(
            self.desc, self.n, self.total, self.elapsed_s, self.unit, self._postfix, final
        )

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._bar is not None:
            self._bar.close()
        elif not self.disable:
            self._write(self.status(final=True))

    def _maybe_write(self) -> None:
        if self.disable or self.closed:
            return
        now = self.clock()
        if now - self._last_line >= self.interval_s:
            self._last_line = now
            self._write(self.status())

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def __iter__(self) -> Iterator[T]:
        if self.iterable is None:
            raise TypeError("this progress has no iterable: pass progress(iterable=...)")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> Progress[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


progress = Progress  # the documented name: ``progress(items, desc=..., unit=...)``


def is_terminal(stream: IO[str]) -> bool:
    """Whether ``stream`` is a terminal (False for pipes, files and closed streams)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
