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
