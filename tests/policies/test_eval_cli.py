"""``vla-eval`` from the command line: bad input fails first, in one line naming the fix."""

import json
import subprocess
import sys

import pytest

from vla.checkpoint import save_checkpoint

BASE = ["env=touch", "env.image_size=32", "episodes=2", "num_envs=1"]


def run_eval(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "policies.cli.eval", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def assert_fails_clearly(done: subprocess.CompletedProcess, *needles: str) -> None:
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "success" not in done.stdout  # nothing ran
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("vla-eval: error: ")
    for needle in needles:
        assert needle in line, line


def test_out_that_is_a_file_fails_before_the_first_episode(tmp_path):
    afile = tmp_path / "results.json"
    afile.write_text("{}")
    done = run_eval("policy=expert", *BASE, f"out={afile}")
    assert_fails_clearly(done, f"out={afile}", "is a file, not a folder", "set out=")
    assert afile.read_text() == "{}"


def test_no_videos_line_without_videos(tmp_path):
    done = run_eval("policy=expert", *BASE, "video_episodes=0", f"out={tmp_path / 'ev'}")
    assert done.returncode == 0, done.stderr
    assert f"report: {tmp_path / 'ev' / 'report.json'}" in done.stdout
    assert "plot:" in done.stdout and "videos:" not in done.stdout
    assert json.loads((tmp_path / "ev" / "report.json").read_text())["videos"] == []
    assert "\r" not in done.stderr  # not a terminal: plain progress lines only


@pytest.fixture
def broken_checkpoint(tmp_path):
    """A saved tiny VLA whose weights file was cut short (a download that stopped)."""
    from vla.action_tokenizer import ActionTokenizer
    from vla.adapters import MLP
    from vla.causal_lm import CausalLM
    from vla.model import VLA
    from vla.text import ByteTokenizer
    from vla.vision import TimmEncoder

    lm = {"model_type": "llama", "hidden_size": 32, "intermediate_size": 64,
          "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2,
          "max_position_embeddings": 128, "bos_token_id": None, "eos_token_id": None,
          "pad_token_id": None}  # fmt: skip
    model = VLA(
        vision=TimmEncoder("resnet10t", image_size=32, feature_stage=3,
                           model_kwargs={"channels": [8, 8, 8, 8], "stem_width": 8}),
        adapter=MLP, llm=CausalLM(config=lm), text_tokenizer=ByteTokenizer(),
        action_tokenizer=ActionTokenizer(low=[-1.0] * 4, high=[1.0] * 4, n_bins=8),
    )  # fmt: skip
    path = tmp_path / "ckpt"
    save_checkpoint(model, path)
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    return path


def test_checkpoint_errors_name_the_folder(tmp_path, broken_checkpoint):
    missing = tmp_path / "no_such_checkpoint"
    done = run_eval("policy=vla", f"checkpoint={missing}", *BASE, "out=null")
    assert_fails_clearly(done, str(missing))
    done = run_eval("policy=vla", f"checkpoint={broken_checkpoint}", *BASE, "out=null")
    assert_fails_clearly(done, str(broken_checkpoint))
    done = run_eval("policy=vla", *BASE, "out=null")  # the default checkpoint=null
    assert_fails_clearly(done, "checkpoint=null", "pass checkpoint=DIR")


def test_a_speech_checkpoint_without_espeak_fails_before_any_episode(tmp_path, tiny_vla):
    """vla-eval wraps the env to speak the instructions for a speech checkpoint (and only for
    one): without espeak-ng that fails first, naming the fix."""
    import os

    save_checkpoint(tiny_vla(speech=True), tmp_path / "speech")
    cmd = [sys.executable, "-m", "policies.cli.eval", "policy=vla",
           f"checkpoint={tmp_path / 'speech'}", *BASE, "out=null", "speech.split=test"]  # fmt: skip
    bare = {**os.environ, "PATH": os.path.dirname(sys.executable)}  # no espeak-ng on it
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=bare)
    assert_fails_clearly(done, "espeak-ng not found", "apt-get install espeak-ng")
