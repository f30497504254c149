"""``vla-data``: inspect episode stores.

vla-data info PATH            summary table (episodes, steps, keys, tasks, disk size)
vla-data info PATH --json     the same as one JSON object on stdout
vla-data info PATH --verify   also decode every committed chunk (reads the whole store)

Opening the store checks it (every committed chunk file present, see store_integrity); a damaged
or invalid store prints one ``error:`` line naming the array, chunk and episodes, and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

from rich.console import Console
from rich.table import Table
from rich.text import Text

from vla.data.episode_store import EpisodeStore
from vla.data.store_error import InvalidStoreError


def _size(num_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if num_bytes < 1024 or unit == "GB":
            return f"{num_bytes:.0f} {unit}" if unit == "B" else f"{num_bytes:.1f} {unit}"
        num_bytes /= 1024
    return f"{num_bytes:.1f} TB"  # unreachable, keeps type checkers calm


def print_info(info: dict, console: Console) -> None:
    """Render ``EpisodeStore.summary()`` as rich tables."""
    overview = Table(title=f"episode store {info['path']}", show_header=False)
    success = info["success_rate"]
    rows = [
        ("episodes", f"{info['episodes']:,}"),
        ("steps", f"{info['steps']:,} (mean episode {info['mean_episode_length']:.1f})"),
        ("success rate", "-" if success is None else f"{success:.1%}"),
        ("splits", ", ".join(f"{k}: {v}" for k, v in info["splits"].items()) or "-"),
        ("extra fields", ", ".join(f"{k}: {v}" for k, v in info["extras"].items()) or "-"),
        ("disk", f"{_size(info['disk_bytes'])} ({_size(info['bytes_per_frame'])} per step)"),
        ("format", f"{info['schema']} v{info['format_version']}"),
        ("env spec", json.dumps(info["env_spec"])),
    ]
    audio = info.get("audio")
    if audio:  # spoken instructions (format 2)
        rows.insert(
            6,
            (
                "audio",
                f"{audio['sample_rate']} Hz, {audio['seconds']:.1f} s (mean "
                f"{audio['mean_seconds']:.2f} s per episode), {_size(audio['disk_bytes'])} "
                f"({_size(audio['bytes_per_second'])} per second)",
            ),
        )
    for name, value in rows:
        overview.add_row(name, Text(value))  # Text: brackets in values are not markup
    console.print(overview)

    arrays = Table(title="data arrays (per step)")
    for column in ("key", "shape", "dtype", "chunks", "disk", "per step"):
        arrays.add_column(column, justify="left" if column in ("key", "dtype") else "right")
    for key, spec in info["keys"].items():
        arrays.add_row(
            Text(key),
            str(tuple(spec["shape"] or ())),
            str(spec["dtype"]),
            str(tuple(spec["chunks"] or ())),
            _size(spec["disk_bytes"]),
            _size(spec["bytes_per_frame"]),
        )
    console.print(arrays)

    tasks = Table(title="tasks")
    tasks.add_column("task")
    tasks.add_column("episodes", justify="right")
    for task, count in sorted(info["tasks"].items()):
        tasks.add_row(Text(task), str(count))
    console.print(tasks)
    if info["instructions"]:
        console.print("example instructions:")
        for text in info["instructions"]:
            console.print(f"  - {text}", markup=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vla-data", description="Inspect vla episode stores.")
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="summarize a store")
    info.add_argument("path", help="the store folder (holds zarr.json, data/, meta/)")
    info.add_argument("--json", action="store_true", help="print one JSON object instead")
    info.add_argument(
        "--verify",
        action="store_true",
        help="also decode every committed chunk, to find damaged (not only missing) chunk files",
    )
    args = parser.parse_args(argv)

    stderr = Console(stderr=True, soft_wrap=True)  # soft wrap: paths in messages stay whole
    summary, verified, error = None, None, ""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            store = EpisodeStore(args.path)
            verified = store.verify() if args.verify else None
            summary = store.summary()
        except InvalidStoreError as err:  # a clear message, not a traceback
            error = str(err)
    for warning in caught:  # e.g. chunks an older writer may have skipped (store_integrity)
        stderr.print(Text("warning: ", style="yellow") + Text(str(warning.message)))
    if summary is None:
        stderr.print(Text("error: ", style="red") + Text(error))
        return 2
    if verified is not None:
        stderr.print(f"verified: all {verified} committed chunks decode", markup=False)
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_info(summary, Console())
    return 0


if __name__ == "__main__":
    sys.exit(main())
