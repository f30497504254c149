"""The store format is written down once: schema constants as stores hold them, the ragged-array
and PCM helpers every reader and writer shares, the camera-key rule, and an acyclic vla.data."""

import ast
from pathlib import Path

import numpy as np
import pytest
import zarr

from vla import keys
from vla.data import EpisodeStore, EpisodeWriter, InvalidStoreError
from vla.data import store_format as fmt
from vla.data.ragged import pack_segments, segment_rows, segment_starts, take_segments

DATA_DIR = Path(fmt.__file__).parent
BOTTOM = {"store_error": set(), "ragged": set(), "store_format": {"store_error"}}


def test_schema_constants_are_the_stored_names():
    # these strings are on disk in every store: changing one orphans the stores already written
    assert fmt.SCHEMA == "vla.episode_store"
    assert fmt.FORMAT_VERSION == 2 and fmt.SUPPORTED_FORMAT_VERSIONS == (1, 2)
    assert fmt.AUDIO_FORMAT_VERSION == 2 and fmt.AUDIO_SCALE == 32767
    attrs = (fmt.ATTR_SCHEMA, fmt.ATTR_FORMAT_VERSION, fmt.ATTR_ENV_SPEC, fmt.ATTR_KEYS)
    assert attrs == ("schema", "format_version", "env_spec", "keys")
    assert fmt.ATTR_AUDIO_SAMPLE_RATE == "audio_sample_rate"
    assert fmt.ATTR_ALL_CHUNKS == "all_chunks_written"
    assert {
        "instruction": str,
        "task": str,
        "split": str,
        "seed": np.int64,
        "success": np.bool_,
        "extra": str,
    } == fmt.META_COLUMNS
    assert fmt.LOWDIM_KEYS == ("action", "state")
    assert fmt.meta_path("episode_ends") == "meta/episode_ends"
    assert fmt.data_path("image_wrist") == "data/image_wrist"


def test_a_written_store_holds_exactly_the_schema(tmp_path, env_spec, episode_factory):
    path = tmp_path / "s.zarr"
    wave = np.array([-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0])  # past full scale at both ends
    with EpisodeWriter(path, env_spec=env_spec) as writer:
        for i, clip in enumerate((wave, wave[:1])):
            episode, meta = episode_factory(i, length=3 + i)
            writer.append(episode, {**meta, keys.AUDIO: clip, keys.AUDIO_SAMPLE_RATE: 8000})
    root = zarr.open_group(path, mode="r")
    assert root.attrs.asdict() == {
        "schema": "vla.episode_store",
        "format_version": 2,
        "env_spec": env_spec,
        "keys": ["image", "image_wrist", "state", "action"],
        "all_chunks_written": True,
        "audio_sample_rate": 8000,
    }
    meta = {name: root[fmt.meta_path(name)] for name in root[keys.META].array_keys()}
    assert set(meta) == {"episode_ends", *fmt.META_COLUMNS, "audio", "audio_ends"}
    assert meta["episode_ends"].dtype == meta["audio_ends"].dtype == np.int64
    assert meta["audio"].dtype == np.int16 and meta["seed"].dtype == np.int64
    assert meta["episode_ends"][:].tolist() == [3, 7] and meta["audio_ends"][:].tolist() == [7, 8]
    # clip to [-1, 1], x 32767, round half to even (-16383.5 -> -16384)
    pcm = [-32767, -32767, -16384, 0, 16384, 32767, 32767, -32767]
    assert meta["audio"][:].tolist() == pcm
    assert {key: root[fmt.data_path(key)].dtype for key in root[keys.DATA].array_keys()} == {
        "image": np.uint8,
        "image_wrist": np.uint8,
        "state": np.float32,
        "action": np.float32,
    }
    store = EpisodeStore(path)
    assert store.audio_starts.tolist() == [0, 7] and store.episode_starts.tolist() == [0, 3]
    np.testing.assert_array_equal(store.audio(1), np.float32(-1.0)[None])


def test_check_header_refuses_other_schemas_and_versions(tmp_path):
    fmt.check_header(tmp_path, {"schema": fmt.SCHEMA, "format_version": 1})
    with pytest.raises(InvalidStoreError, match="is not a vla episode store"):
        fmt.check_header(tmp_path, {"schema": "diffusion_policy", "format_version": 2})
    with pytest.raises(InvalidStoreError, match="format_version=3 is not supported.*upgrade vla"):
        fmt.check_header(tmp_path, {"schema": fmt.SCHEMA, "format_version": 3})


def test_ends_must_be_positive_and_increasing(tmp_path):
    fmt.check_ends(tmp_path, np.array([2, 5], np.int64), keys.EPISODE_ENDS, "step")
    fmt.check_ends(tmp_path, np.zeros(0, np.int64), keys.EPISODE_ENDS, "step")
    with pytest.raises(InvalidStoreError, match="episode 0 ends at 0 in 'meta/audio_ends'"):
        fmt.check_ends(tmp_path, np.array([0, 5]), keys.AUDIO_ENDS, "audio sample")
    with pytest.raises(InvalidStoreError, match="episode 2 ends at 5 <= the end of episode 1"):
        fmt.check_ends(tmp_path, np.array([2, 5, 5]), keys.EPISODE_ENDS, "step")


@pytest.mark.parametrize(
    "key, camera",
    [
        ("image", True),
        ("image_wrist", True),
        ("image_top_left", True),
        ("images", False),
        ("imagewrist", False),
        ("wrist_image", False),
        ("Image", False),
        ("state", False),
        ("", False),
    ],
)
def test_camera_key_rule(key, camera):
    assert fmt.is_image_key(key) is camera
    assert (fmt.expected_dtype(key) == np.uint8) is camera


def test_expected_dtypes():
    assert fmt.expected_dtype("action") == fmt.expected_dtype("state") == np.float32
    assert fmt.expected_dtype("reward") is None  # any numeric dtype


def test_ragged_round_trip_with_empty_segments():
    parts = [np.arange(3), np.zeros(0, np.int64), np.arange(10, 12), np.zeros(0, np.int64)]
    values, ends = pack_segments(parts, offset=5)
    assert values.tolist() == [0, 1, 2, 10, 11] and ends.dtype == np.int64
    assert ends.tolist() == [8, 8, 10, 10]  # counted after the 5 entries stored before them
    values, ends = pack_segments(parts)
    starts = segment_starts(ends)
    assert starts.tolist() == [0, 3, 3, 5] and starts.dtype == np.int64
    for i, part in enumerate(parts):
        np.testing.assert_array_equal(values[starts[i] : ends[i]], part)
    assert segment_rows(starts, ends, [2, 0, 1]).tolist() == [3, 4, 0, 1, 2]

    taken, taken_ends = take_segments(values, starts, ends, [2, 1, 0])
    assert taken.tolist() == [10, 11, 0, 1, 2] and taken_ends.tolist() == [2, 2, 5]
    again = take_segments(taken, segment_starts(taken_ends), taken_ends, [2, 0])
    assert again[0].tolist() == [0, 1, 2, 10, 11] and again[1].tolist() == [3, 5]


def test_ragged_edge_cases():
    assert segment_starts(np.zeros(0, np.int64)).shape == (0,)
    frames = np.ones((4, 2, 2, 3), np.uint8)  # (T, H, W, 3): trailing axes ride along
    one, ends = pack_segments([frames])
    assert one is frames and ends.tolist() == [4]  # one part is not copied
    taken, ends = take_segments(frames, np.array([0]), np.array([4]), [0])
    assert not np.shares_memory(taken, frames)  # a copy: it must not pin the source
    empty, ends = take_segments(frames, np.array([0]), np.array([4]), [])
    assert empty.shape == (0, 2, 2, 3) and empty.dtype == np.uint8 and ends.shape == (0,)
    assert segment_rows(np.array([0]), np.array([4]), []).dtype == np.int64
    with pytest.raises(ValueError, match="parts is empty"):
        pack_segments([])


def test_pcm_scaling_round_trip_and_clipping():
    pcm = np.arange(-32767, 32768, dtype=np.int16)  # every level the writer produces
    wave = fmt.pcm_to_float(pcm)
    assert wave.dtype == np.float32 and wave.min() == -1.0 and wave.max() == 1.0
    np.testing.assert_array_equal(fmt.float_to_pcm(wave), pcm)  # lossless both ways

    x = np.random.default_rng(0).uniform(-1, 1, 1000)  # (1000,) float64
    error = np.abs(fmt.pcm_to_float(fmt.float_to_pcm(x)) - x)
    assert error.max() <= 0.5 / fmt.AUDIO_SCALE + 1e-7  # 16-bit rounding (+ float32)
    loud = fmt.float_to_pcm(np.array([-7.0, -1.0001, 1.0001, 3.0], np.float32))
    assert loud.dtype == np.int16 and loud.tolist() == [-32767, -32767, 32767, 32767]
    # int16's extra negative level reads just past -1; stored again it clips to full scale
    assert fmt.float_to_pcm(fmt.pcm_to_float(np.array([-32768], np.int16))).tolist() == [-32767]


def _imports(path: Path) -> set[str]:
    """vla.data modules ``path`` imports anywhere in it (module level, functions, TYPE_CHECKING)."""
    modules = {p.stem for p in DATA_DIR.glob("*.py")} - {"__init__"}
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x / from .x import y
                base = "vla.data" + ("." + base if base else "")
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[:2] == ["vla", "data"] and len(parts) > 2 and parts[2] in modules:
                found.add(parts[2])
    return found - {path.stem}


def test_vla_data_has_no_import_cycle():
    graph = {p.stem: _imports(p) for p in DATA_DIR.glob("*.py") if p.stem != "__init__"}
    for module, allowed in BOTTOM.items():
        assert graph[module] <= allowed, f"{module} must stay a bottom module: {graph[module]}"
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycle = path[path.index(module) :] + [module]
            raise AssertionError(f"import cycle in vla.data: {' -> '.join(cycle)}")
        if module not in done:
            for imported in sorted(graph[module]):
                visit(imported, [*path, module])
            done.add(module)

    for module in sorted(graph):
        visit(module, [])
