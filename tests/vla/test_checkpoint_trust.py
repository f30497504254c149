"""A checkpoint is untrusted input: loading must run no code it names and read no damaged file."""

import json
import pickle
import sys

import pytest
import torch

from vla.checkpoint import (
    CONFIG_FILE,
    TOKENIZER_DIR,
    WEIGHTS_FILE,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from vla.checkpoint import init_from_checkpoint as init_from
from vla.model import VLA
from vla.trusted_config import UntrustedConfigError, build, check_config

pytestmark = pytest.mark.usefixtures("single_thread")


class Payload:
    """Unpickling it creates ``marker``: proof that code from the folder ran."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def checkpoint(tmp_path, vla_factory):
    return save_checkpoint(vla_factory(), tmp_path / "ckpt")


def edit_config(path, edit) -> None:
    meta = json.loads((path / CONFIG_FILE).read_text())
    edit(meta["model"])
    (path / CONFIG_FILE).write_text(json.dumps(meta))


def attacks(tmp_path, checkpoint):
    """(name, node, proof) triples: each node, built, would leave ``proof`` changed."""
    marker = tmp_path / "pwned"
    (checkpoint / "payload.pkl").write_bytes(pickle.dumps(Payload(str(marker))))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    return (
        [
            ("os.system", {"_target_": "os.system", "command": f"touch {marker}"}),
            ("builtins.open", {"_target_": "builtins.open", "file": str(victim), "mode": "w"}),
            (
                "torch.load",
                {
                    "_target_": "torch.load",
                    "f": str(checkpoint / "payload.pkl"),
                    "weights_only": False,
                },
            ),
            ("subprocess.run", {"_target_": "subprocess.run", "args": ["touch", str(marker)]}),
            (
                "importlib.import_module",
                {"_target_": "importlib.import_module", "name": "antigravity"},
            ),
            # reached through this package: a module attribute, and a vla class that is no model part
            (
                "vla.checkpoint.os.system",
                {"_target_": "vla.checkpoint.os.system", "command": "true"},
            ),
            ("vla.data.EpisodeWriter", {"_target_": "vla.data.EpisodeWriter", "env_spec": {}}),
        ],
        marker,
        victim,
    )


@pytest.mark.parametrize(
    "where", ["adapter", "vision", "llm.config.rope_scaling", "action_tokenizer.low"]
)
def test_foreign_targets_are_refused_before_anything_runs(tmp_path, checkpoint, where):
    nodes, marker, victim = attacks(tmp_path, checkpoint)
    for target, node in nodes:

        def plant(model, node=node):
            *parents, leaf = where.split(".")
            for p in parents:
                model = model[p]
            model[leaf] = node

        edit_config(checkpoint, plant)
        with pytest.raises(UntrustedConfigError, match=rf"{CONFIG_FILE}.*{target}") as err:
            load_checkpoint(checkpoint)
        assert str(checkpoint) in str(err.value)
        assert not marker.exists() and victim.read_text() == "precious", target
        assert "antigravity" not in sys.modules


def test_directives_remote_code_and_outside_files_are_refused(checkpoint, tmp_path):
    cases = [
        (lambda m: m["adapter"].update(_args_=[1]), "_args_"),
        (lambda m: m.update(_recursive_=False), "_recursive_"),
        (lambda m: m["llm"]["config"].update(trust_remote_code=True), "trust_remote_code"),
        (lambda m: m["llm"]["config"].update(auto_map={"AutoModel": "x.Y"}), "auto_map"),
        (
            lambda m: m["llm"]["config"].update(attn_implementation="kernels-community/flash"),
            "built-in attention",
        ),
        (lambda m: m["llm"].update(path=str(tmp_path)), "llm.path"),
        (lambda m: m["vision"].update(pretrained_path="/etc/passwd"), "vision.pretrained_path"),
        (lambda m: m["text_tokenizer"].update(path="../../elsewhere"), "leaves the checkpoint"),
        (lambda m: m["text_tokenizer"].update(path=str(tmp_path)), "relative path inside"),
    ]
    pristine = (checkpoint / CONFIG_FILE).read_text()
    for edit, message in cases:
        (checkpoint / CONFIG_FILE).write_text(pristine)
        edit_config(checkpoint, edit)
        with pytest.raises(UntrustedConfigError, match=message):
            load_checkpoint(checkpoint)
    (checkpoint / CONFIG_FILE).write_text(pristine)
    assert isinstance(load_checkpoint(checkpoint), VLA)  # the pristine folder still loads


def test_interpolations_stay_strings_and_partials_build():
    node = {"_target_": "vla.text.ByteTokenizer", "path": None}
    classes = check_config({"tok": node, "text": "${oc.env:HOME}"}, "test")
    built = build({"tok": node, "text": "${oc.env:HOME}"}, classes)
    assert built["text"] == "${oc.env:HOME}"  # never resolved (no environment leaks in)
    partial = build({"_target_": "vla.adapters.MLP", "_partial_": True, "hidden_dim": 8}, {
        "vla.adapters.MLP": check_config({"_target_": "vla.adapters.MLP"}, "t")["vla.adapters.MLP"]
    })  # fmt: skip
    assert partial(in_dim=4, out_dim=6, num_patches=2).config["hidden_dim"] == 8


def test_your_own_part_loads_when_you_trust_it(tmp_path, monkeypatch, vla_factory):
    (tmp_path / "mylab_parts.py").write_text(
        "from vla.adapters import Linear\n\nclass MyLinear(Linear):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from mylab_parts import MyLinear

    path = save_checkpoint(vla_factory(adapter=MyLinear), tmp_path / "ckpt")
    with pytest.raises(UntrustedConfigError, match=r"trusted_targets=\['mylab_parts.MyLinear'\]"):
        load_checkpoint(path)
    loaded = load_checkpoint(path, trusted_targets=["mylab_parts.MyLinear"])
    assert type(loaded.obs.adapter).__name__ == "MyLinear"


def test_damaged_files_are_refused_naming_the_file(checkpoint):
    weights = checkpoint / WEIGHTS_FILE
    good = weights.read_bytes()
    weights.write_bytes(good[: len(good) // 2])  # a truncated download
    with pytest.raises(CheckpointError, match=rf"{WEIGHTS_FILE}: \d+ bytes but .* recorded"):
        load_checkpoint(checkpoint)
    flipped = bytearray(good)
    flipped[-5] ^= 0x40  # one flipped bit inside a tensor: same size, other weights
    weights.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match=rf"{WEIGHTS_FILE}: SHA-256 differs"):
        load_checkpoint(checkpoint)
    weights.write_bytes(good)
    tokenizer_file = next(p for p in (checkpoint / TOKENIZER_DIR).iterdir() if p.is_file())
    original = tokenizer_file.read_bytes()
    tokenizer_file.write_bytes(original + b" ")
    with pytest.raises(CheckpointError, match=tokenizer_file.name):
        load_checkpoint(checkpoint)
    tokenizer_file.write_bytes(original)
    (checkpoint / TOKENIZER_DIR / "tokenizer_config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="tokenizer_config.json: not in the checkpoint's"):
        load_checkpoint(checkpoint)
    (checkpoint / TOKENIZER_DIR / "tokenizer_config.json").unlink()
    (checkpoint / CONFIG_FILE).write_text('{"format": "vla", ')  # a broken config.json
    with pytest.raises(CheckpointError, match=rf"{CONFIG_FILE}: not valid JSON"):
        load_checkpoint(checkpoint)


def test_an_unrecorded_truncated_file_still_names_the_file(checkpoint):
    meta = json.loads((checkpoint / CONFIG_FILE).read_text())
    del meta["files"]  # a format-1 checkpoint: no integrity record
    (checkpoint / CONFIG_FILE).write_text(json.dumps({**meta, "format_version": 1}))
    assert isinstance(load_checkpoint(checkpoint), VLA)  # old checkpoints still load
    weights = checkpoint / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=rf"{WEIGHTS_FILE}: not a readable safetensors"):
        load_checkpoint(checkpoint)


def test_nan_weights_are_refused(tmp_path, vla_factory):
    model = vla_factory()
    with torch.no_grad():
        model.prompt.end[0, 0] = float("nan")
    path = save_checkpoint(model, tmp_path / "ckpt")  # a record that matches: the file is as saved
    with pytest.raises(CheckpointError, match="'prompt.end' holds 1 NaN/inf"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="'prompt.end' holds 1 NaN/inf"):
        init_from(vla_factory(), path)
