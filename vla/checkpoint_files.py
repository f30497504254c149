"""The files of a checkpoint folder: an integrity record (SHA-256 per file) and careful reads.

``config.json`` lists every other file of the folder with its size and SHA-256 (``files``), written
last, after the files it describes. Loading checks each listed file before reading it, so a
truncated download, a flipped bit or a file swapped in from another checkpoint is refused with the
file's name instead of surfacing as a bare ``SafetensorError`` or as silently wrong weights; files
the record does not list are never read (an unlisted file inside the tokenizer folder, which a
tokenizer loader would read, is refused).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

MANIFEST_KEY = "files"
_BLOCK = 1 << 20


class CheckpointError(ValueError):
    """A checkpoint folder is damaged, incomplete or asks for something loading refuses."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def file_record(directory: Path, exclude: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``{relative path: {"bytes": n, "sha256": hex}}`` of every file under ``directory``."""
    record = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        rel = path.relative_to(directory).as_posix()
        if rel not in exclude:
            record[rel] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    return record


def verify_files(directory: Path, record: Any, sealed_dirs: tuple[str, ...]) -> None:
    """Every recorded file is present with its size and digest; ``sealed_dirs`` hold no others."""
    where = f"{directory / 'config.json'}"
    if not isinstance(record, dict) or not all(isinstance(v, dict) for v in record.values()):
        raise CheckpointError(f"{where}: '{MANIFEST_KEY}' must map file names to size and sha256")
    base = directory.resolve()
    for rel, entry in record.items():
        path = (directory / rel).resolve()
        if Path(rel).is_absolute() or not path.is_relative_to(base):
            raise CheckpointError(f"{where}: lists {rel!r}, which is outside the checkpoint folder")
        if not path.is_file():
            raise CheckpointError(
                f"{directory / rel}: missing (the checkpoint's integrity record lists it); "
                "copy or download the whole folder again"
            )
        size = path.stat().st_size
        if size != entry.get("bytes"):
            raise CheckpointError(
                f"{directory / rel}: {size} bytes but the checkpoint recorded {entry.get('bytes')} "
                "(truncated or replaced); download or copy the checkpoint again"
            )
        if sha256_file(path) != entry.get("sha256"):
            raise CheckpointError(
                f"{directory / rel}: SHA-256 differs from the checkpoint's record (the file was "
                "changed or corrupted after saving); download or copy the checkpoint again"
            )
    for sealed in sealed_dirs:
        for path in sorted((directory / sealed).rglob("*")):
            rel = path.relative_to(directory).as_posix()
            if path.is_file() and rel not in record:
                raise CheckpointError(
                    f"{path}: not in the checkpoint's integrity record, and {sealed}/ is read as "
                    "a whole by the tokenizer loader: remove the file (it was added after saving)"
                )


def read_json(path: Path) -> Any:
    """Parse a JSON file, or raise CheckpointError naming it (never a bare JSONDecodeError)."""
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(
            f"{path}: not valid JSON ({err}); the checkpoint is damaged: copy or download it again"
        ) from None
