"""A fingerprint of the weights on every rank: checks that data-parallel replicas agree."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import lightning as L


class ParameterDigest(L.Callback):
    """At the end of training each rank writes ``rank<r>.json`` with a SHA-256 of its weights."""

    def __init__(self, dirpath: str | Path):
        self.dirpath = Path(dirpath)

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        h = hashlib.sha256()
        for name, p in sorted(module.state_dict().items()):
            h.update(name.encode())
            h.update(p.detach().cpu().contiguous().numpy().tobytes())
        self.dirpath.mkdir(parents=True, exist_ok=True)
        entry = {"rank": trainer.global_rank, "step": trainer.global_step, "sha256": h.hexdigest()}
        (self.dirpath / f"rank{trainer.global_rank}.json").write_text(json.dumps(entry))
