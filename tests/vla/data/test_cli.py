import json

from vla import keys
from vla.cli.data import main


def test_info_text(store_factory, capsys):
    path = store_factory(3, lengths=[3, 4, 5])
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    for text in (
        "episodes",
        "12",
        keys.IMAGE + "_wrist",
        "(8, 8, 3)",
        "vla/Touch-v0",
        "touch the block 0",
    ):
        assert text in out


def test_info_json(store_factory, capsys):
    path = store_factory(3, lengths=[3, 4, 5])
    assert main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["episodes"] == 3 and info["steps"] == 12
    assert (
        info["keys"][keys.ACTION] | {"shape": [4], "dtype": "float32"} == info["keys"][keys.ACTION]
    )
    assert info["tasks"] == {"vla/Push-v0": 2, "vla/Touch-v0": 1}
    assert info["disk_bytes"] > 0 and info["bytes_per_frame"] > 0


def test_info_on_a_bad_store_is_one_clear_line(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nope.zarr")]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "no such episode store" in err and "Traceback" not in err


def test_info_reports_audio(store_factory, capsys):
    path = store_factory(2, audio=True)
    assert main(["info", str(path), "--json"]) == 0
    audio = json.loads(capsys.readouterr().out)["audio"]
    assert audio["sample_rate"] == 16000 and audio["seconds"] == (200 + 237) / 16000
    assert main(["info", str(path)]) == 0
    assert "16000 Hz" in capsys.readouterr().out


SMALL = dict(lowdim_chunk_steps=8, image_chunk_bytes=8 * 8 * 3 * 4)  # 8 steps, 4 frames a chunk


def test_info_on_a_missing_chunk_exits_2_and_names_it(store_factory, capsys):
    path = store_factory(6, lengths=[8, 5, 8, 7, 7, 7], **SMALL)  # ends 8 13 21 28 35 42
    (path / keys.DATA / keys.ACTION / "c" / "1" / "0").unlink()
    for flags in ([], ["--json"]):
        assert main(["info", str(path), *flags]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert "error:" in captured.err and "Traceback" not in captured.err
        assert "array 'data/action' is missing chunk 1 (steps 8-15: episodes 1-2)" in captured.err
        assert "restore the store from a backup or re-collect it" in captured.err


def test_info_verify_finds_a_junk_chunk(store_factory, capsys):
    path = store_factory(6, lengths=[8, 5, 8, 7, 7, 7], **SMALL)
    assert main(["info", str(path), "--verify"]) == 0
    assert "verified: all" in capsys.readouterr().err
    (path / keys.DATA / keys.IMAGE / "c" / "3" / "0" / "0" / "0").write_bytes(b"\x00junk" * 9)
    assert main(["info", str(path)]) == 0  # opening lists chunk files; it decodes no frames
    capsys.readouterr()
    assert main(["info", str(path), "--verify"]) == 2
    err = capsys.readouterr().err
    assert "array 'data/image' chunk 3 (steps 12-15: episodes 1-2) cannot be read" in err
    assert "Traceback" not in err
