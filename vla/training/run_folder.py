"""A training run's folder: refuse to clobber one, clear it on request, keep its logs on resume.

``out/`` of a run holds ``config.json``, ``checkpoints/`` and ``logs/`` (TensorBoard events and
``metrics.csv``). Starting a run into a folder that holds one would overwrite its checkpoints,
and Lightning's CSV logger deletes an existing ``metrics.csv`` when its folder is not empty — on
a resume too. So ``vla-train`` decides up front (``prepare_run_folder``): a fresh folder starts a
run, ``resume=true`` continues one (its metrics kept up to the resumed step, then appended), and
``overwrite=true`` deletes the old run's files (only those) first; anything else is refused.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

RUN_ENTRIES = ("config.json", "checkpoints", "logs")  # what a run writes under out/
METRICS_FILE = ExperimentWriter.NAME_METRICS_FILE


class RunFolderError(RuntimeError):
    """``out`` holds another run and neither ``resume`` nor ``overwrite`` was asked for."""


# set by launchers for every process of a data-parallel job (torchrun, Lightning, SLURM)
_RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")


def is_first_process() -> bool:
    """Whether this is the job's first process (before torch.distributed is set up): the other
    ranks start when the first has already written the run's files, so only it checks them."""
    return all(int(os.environ.get(name) or 0) == 0 for name in _RANK_VARIABLES)


def prepare_run_folder(out: Path, resume: bool, overwrite: bool) -> None:
    """Check (and with ``overwrite``, clear) ``out`` before any work; see the module docstring.
    Other ranks of a data-parallel job skip it (see ``is_first_process``)."""
    if resume and overwrite:
        raise ValueError("resume=true and overwrite=true contradict each other: pick one")
    if not is_first_process():
        return
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"out={str(out)!r} is a file: pass a folder for the run")
    held = [name for name in RUN_ENTRIES if (out / name).exists()]
    if not held or resume:
        return
    if not overwrite:
        raise RunFolderError(
            f"out={str(out)!r} already holds a run ({', '.join(held)}); starting another there "
            "would overwrite its checkpoints and logs. Continue it with resume=true, replace it "
            "with overwrite=true, or pass another out="
        )
    for name in held:
        path = out / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def trim_metrics(log_dir: Path, step: int) -> int:
    """Drop ``metrics.csv`` rows logged after ``step`` (a resumed run logs them again); returns
    the rows kept. Written to a temporary file and renamed: a kill leaves the old or the new."""
    path = log_dir / METRICS_FILE
    if not path.is_file():
        return 0
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames or [], list(reader)
    kept = [r for r in rows if not r.get("step") or int(float(r["step"])) <= step]
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(kept)
    os.replace(tmp, path)
    return len(kept)


class _AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer, minus deleting an existing ``metrics.csv``: appends to it, its
    header kept (``prepare_run_folder`` already decided the folder may be written)."""

    def _check_log_dir_exists(self) -> None:
        if os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as f:
                self.metrics_keys = sorted(next(csv.reader(f), []))


class AppendingCSVLogger(CSVLogger):
    """``lightning.pytorch.loggers.CSVLogger`` that continues a resumed run's ``metrics.csv``."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            get_filesystem(self.root_dir).makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment
