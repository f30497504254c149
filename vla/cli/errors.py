"""Bad input on the command line: one ``<prog>: error: ...`` line and exit status 2.

The library raises errors that name the setting, the value and the fix (``ValueError``,
``FileNotFoundError``, ``InvalidStoreError``, ``CheckpointError`` ...); a traceback above them
only hides that line. ``HYDRA_FULL_ERROR=1`` re-raises, for the traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, NotADirectoryError)


def full_error() -> bool:
    """Whether the user asked for tracebacks (Hydra's switch)."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def fail(prog: str, message: str) -> NoReturn:
    """Print ``<prog>: error: <message>`` to stderr and exit with status 2."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(2)


@contextmanager
def user_errors(prog: str, extra: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Turn the library's bad-input errors raised inside the block into ``fail(prog, ...)``."""
    try:
        yield
    except (*USER_ERRORS, *extra) as err:
        if full_error():
            raise
        fail(prog, str(err))
