"""Keep a clean run's log clean: Lightning (and PyOpenGL) messages that say nothing about it.

Each filter is narrow (one message, by its text), so a new or real warning still shows.
"""

from __future__ import annotations

import logging
import warnings

# (message regex, why it is noise here)
_WARNINGS = (
    # torch deprecated LeafSpec; Lightning 2.6's _pytree still calls it: not actionable by users
    (r".*isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning),
    # the model summary's byte estimate assumes fp32 under bf16-mixed; the parameter counts hold
    (r"Precision bf16-mixed is not supported by the model summary", UserWarning),
    # VLA.train keeps frozen parts (a pretrained text encoder, a frozen image encoder's
    # BatchNorm) and the EMA copy in eval mode on purpose; Lightning warns for any module in eval
    (r"Found \d+ module\(s\) in eval mode at the start of training", UserWarning),
)
_INFO_PREFIXES = ("💡 Tip:",)  # advertisements for cloud services


class _DropAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(_INFO_PREFIXES)


def quiet_lightning() -> None:
    """Install the filters (idempotent)."""
    for message, category in _WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    # PyOpenGL (imported with MuJoCo's renderer) says at INFO that an optional C module is absent
    logging.getLogger("OpenGL.acceleratesupport").setLevel(logging.WARNING)
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropAdverts) for f in logger.filters):
            logger.addFilter(_DropAdverts())
