import json
import subprocess
import sys

import numpy as np
import pytest

from policies.batch import PerEnvPolicies, obs_at
from policies.evaluate import evaluate, prepare_out, wilson_interval
from policies.scripted_expert import ScriptedExpert

ENV = {"_target_": "gymnasium.make", "id": "envs:vla/MultiTask-v0", "image_size": 32}
FIELDS = {
    "success_rate", "episodes", "ci95", "per_task", "split", "mean_episode_length",
    "checkpoint", "seed",
}  # fmt: skip


def test_wilson_interval():
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-3) and hi == pytest.approx(0.9433, abs=1e-3)
    assert wilson_interval(0, 20)[0] == 0.0 and wilson_interval(20, 20)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_report_is_the_same_with_one_or_two_envs_and_writes_artifacts(tmp_path):
    reports = []
    for n in (1, 2):
        policy = PerEnvPolicies(ScriptedExpert, n)
        reports.append(
            evaluate(dict(ENV, split="test"), policy, episodes=5, seed=3, num_envs=n,
                     out=tmp_path / f"n{n}", video_episodes=2, progress=False)
        )  # fmt: skip
    one, two = reports
    assert one["episodes_detail"] == two["episodes_detail"]
    assert set(one) >= FIELDS and one["episodes"] == 5 and one["split"] == "test"
    assert [e["seed"] for e in one["episodes_detail"]] == [3, 4, 5, 6, 7]
    assert one["success_rate"] == 1.0  # the expert is the ceiling
    assert sum(t["episodes"] for t in one["per_task"].values()) == 5
    saved = json.loads((tmp_path / "n2" / "report.json").read_text())
    assert saved["success_rate"] == two["success_rate"]
    assert (tmp_path / "n2" / "success_per_task.png").stat().st_size > 1000
    videos = sorted((tmp_path / "n2" / "videos").glob("*.mp4"))
    assert [v.name[:8] for v in videos] == ["seed0003", "seed0004"]


def test_obs_at_slices_nested_batches():
    obs = {"image": np.zeros((3, 2)), "privileged": {"task": np.array([0, 1, 2])}}
    assert obs_at(obs, 2)["privileged"]["task"] == 2 and obs_at(obs, 0)["image"].shape == (2,)


def test_cli_prints_and_writes_the_report(tmp_path):
    cmd = [
        sys.executable, "-m", "policies.cli.eval", "policy=expert", "env=lift",
        "env.image_size=32", "episodes=2", "num_envs=1", "video_episodes=1", f"out={tmp_path}",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "success" in done.stdout and "report.json" in done.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report) >= FIELDS and report["per_task"]["lift"]["episodes"] == 2


def test_bad_arguments():
    with pytest.raises(ValueError, match="episodes=0"):
        evaluate(ENV, PerEnvPolicies(ScriptedExpert, 1), episodes=0)


def test_out_is_made_and_checked_before_any_episode(tmp_path):
    made = prepare_out(tmp_path / "a" / "b")
    assert made.is_dir() and list(made.iterdir()) == []  # the write test left nothing
    afile = tmp_path / "report.txt"
    afile.write_text("x")
    with pytest.raises(ValueError, match=r"out=.*report.txt is a file, not a folder: set out="):
        prepare_out(afile)
    with pytest.raises(ValueError, match=r"out=.*report.txt/sub cannot be written: .*set out="):
        prepare_out(afile / "sub")

    class NeverActs(PerEnvPolicies):
        def act_batch(self, obs):
            raise AssertionError("an episode ran before `out` was checked")

    with pytest.raises(ValueError, match="is a file"):
        evaluate(ENV, NeverActs(ScriptedExpert, 1), episodes=1, num_envs=1, out=afile)


def test_report_lists_only_what_this_run_wrote_and_progress_is_plain_lines(tmp_path, capsys):
    out = tmp_path / "ev"
    (out / "videos").mkdir(parents=True)
    (out / "videos" / "old.mp4").write_bytes(b"")  # a previous run's: not this report's
    report = evaluate(dict(ENV, id="envs:vla/Touch-v0"), PerEnvPolicies(ScriptedExpert, 1),
                      episodes=3, num_envs=1, out=out, video_episodes=1)  # fmt: skip
    assert report["videos"] == ["videos/seed0000_touch_success.mp4"]
    assert report["plot"] == "success_per_task.png" and (out / report["plot"]).exists()
    assert json.loads((out / "report.json").read_text())["videos"] == report["videos"]
    err = capsys.readouterr().err  # not a terminal: one final line, no bar redraws
    assert "\r" not in err
    assert err.splitlines()[-1].startswith("evaluate: 3/3 episodes (100%), ")
    assert err.splitlines()[-1].endswith("success=100%")
    none = evaluate(dict(ENV, id="envs:vla/Touch-v0"), PerEnvPolicies(ScriptedExpert, 1),
                    episodes=1, num_envs=1, out=tmp_path / "nv", video_episodes=0,
                    progress=False)  # fmt: skip
    assert none["videos"] == [] and not (tmp_path / "nv" / "videos").exists()
    assert capsys.readouterr().err == ""


class ToldPolicy:
    """Acts like the scripted expert (privileged) and records what instruction it was told."""

    def __init__(self, num_envs: int):
        self.inner = PerEnvPolicies(ScriptedExpert, num_envs)
        self.needs_privileged = True
        self.told: list[str] = []

    def reset(self, mask):
        self.inner.reset(mask)

    def act_batch(self, obs):
        self.told += [str(t) for t in obs["instruction"]]
        return self.inner.act_batch(obs)


@pytest.mark.parametrize("control", ["shuffled", "empty"])
def test_language_controls_change_only_what_the_policy_reads(control):
    env = {"_target_": "gymnasium.make", "id": "envs:vla/Touch-v0", "image_size": 32}
    policy = ToldPolicy(1)
    report = evaluate(env, policy, episodes=6, seed=11, num_envs=1, instruction=control,
                      progress=False)  # fmt: skip
    assert report["instruction_control"] == control
    for ep in report["episodes_detail"]:
        assert ep["given"] != ep["instruction"]  # the env's own instruction is never shown
        if control == "empty":
            assert ep["given"] == ""
    if control == "shuffled":
        own = {e["instruction"] for e in report["episodes_detail"]}
        assert {e["given"] for e in report["episodes_detail"]} <= own  # other episodes' words
    assert set(policy.told) == {e["given"] for e in report["episodes_detail"]}
    with pytest.raises(ValueError, match="instruction='typo'"):
        evaluate(env, policy, episodes=1, instruction="typo", progress=False)


def test_episodes_per_task_gives_every_task_the_same_count(tmp_path):
    policy = PerEnvPolicies(ScriptedExpert, 2)
    report = evaluate(ENV, policy, seed=3, num_envs=2, episodes_per_task=2, out=tmp_path,
                      video_episodes=1, progress=False)  # fmt: skip
    tasks = ("touch", "lift", "push", "pick_place", "relation")
    assert {t: r["episodes"] for t, r in report["per_task"].items()} == dict.fromkeys(tasks, 2)
    assert [e["seed"] for e in report["episodes_detail"]] == list(range(3, 13))
    assert [e["task"] for e in report["episodes_detail"]] == [t for t in tasks for _ in "ab"]
    assert report["episodes"] == 10 and len(report["videos"]) == 5  # a video of every task
    single = {"_target_": "gymnasium.make", "id": "envs:vla/Touch-v0", "image_size": 32}
    with pytest.raises(ValueError, match="episodes_per_task needs a multi-task env"):
        evaluate(single, policy, episodes_per_task=2, progress=False)


def test_shuffled_instructions_come_from_other_tasks_when_each_task_runs_apart():
    """With episodes_per_task every task is evaluated as its own part; the substitutes are drawn
    across parts, so one episode per task still gets another episode's instruction."""
    policy = ToldPolicy(1)
    report = evaluate(ENV, policy, seed=3, num_envs=1, episodes_per_task=1,
                      instruction="shuffled", progress=False)  # fmt: skip
    episodes = report["episodes_detail"]
    assert len(episodes) == 5
    own = [e["instruction"] for e in episodes]
    for e in episodes:
        assert e["given"] != e["instruction"] and e["given"] in own
