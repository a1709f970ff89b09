"""Recipe validation and the stage runner's skip / redo / resume logic (no real training)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from augreid.errors import ConfigError
from augreid.pipeline.recipe import load_recipe, validate
from augreid.pipeline.runner import Stage, execute, format_plan, plan

REPO = Path(__file__).resolve().parents[1]


def test_defaults_fill_in():
    recipe = validate({"name": "x"})
    assert recipe.settings["synth"]["num_poses"] == 8
    assert recipe.settings["reid"]["label_scheme"] == "same-id"
    assert recipe.uses_demo and recipe.seeds == [0]


def test_all_problems_reported_at_once(tmp_path):
    raw = {
        "name": "x",
        "seeds": [0, "one"],
        "reid": {"epochs": "ten", "label_scheme": "magic", "colour": "red"},
        "synth": {"num_poses": True, "poses": "file"},
        "dataset": {"root": str(tmp_path / "nowhere")},
        "extra": 1,
    }
    with pytest.raises(ConfigError) as err:
        validate(raw)
    text = str(err.value)
    for expected in (
        "reid.epochs: expected int",
        "reid.label_scheme: 'magic' is not one of",
        "reid.colour: unknown key",
        "synth.num_poses: expected int, got a boolean",
        "synth.pose_file: --poses file needs",
        "dataset.root:",
        "does not exist",
        "extra: unknown key",
        "seeds[1]: expected int",
    ):
        assert expected in text, expected


def test_relative_paths_resolve_against_the_recipe(tmp_path):
    (tmp_path / "poses.csv").write_text("name:keypoints_y:keypoints_x\n")
    (tmp_path / "r.toml").write_text('name = "r"\n[synth]\nposes = "file"\npose_file = "poses.csv"\n')
    recipe = load_recipe(tmp_path / "r.toml")
    assert recipe.settings["synth"]["pose_file"] == str(tmp_path / "poses.csv")
    (tmp_path / "bad.toml").write_text("name = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_recipe(tmp_path / "bad.toml")
    with pytest.raises(ConfigError, match="does not exist"):
        load_recipe(tmp_path / "missing.toml")


def test_overrides(tmp_path):
    (tmp_path / "r.toml").write_text('name = "r"\n')
    recipe = load_recipe(tmp_path / "r.toml", {"reid.epochs": 2, "seeds": [3, 4]})
    assert recipe.settings["reid"]["epochs"] == 2 and recipe.seeds == [3, 4]


@pytest.mark.parametrize("path", sorted((REPO / "recipes").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_recipes_validate(path):
    root = tomllib.loads(path.read_text(encoding="utf-8")).get("dataset", {}).get("root", "demo")
    if root != "demo" and not (path.parent / root).exists():
        # Paper-scale recipes name the user's Market-1501 folder; the cuhk03 ones ../shared/data, which
        # a machine may not have. Such a recipe must fail on missing files only (data, keypoints, weights).
        with pytest.raises(ConfigError, match="dataset.root") as err:
            load_recipe(path)
        problems = str(err.value).splitlines()[1:]
        assert all(line.strip().endswith("does not exist") for line in problems), str(err.value)
    else:
        recipe = load_recipe(path)
        assert recipe.name


def test_a_preset_file_is_found_from_any_directory_and_editing_it_retrains_the_generator(tmp_path, monkeypatch):
    from augreid.pipeline.stages import build_stages

    preset = (REPO / "generators" / "pg2" / "presets" / "cpu-small.toml").read_text()
    (tmp_path / "mine.toml").write_text(preset)
    (tmp_path / "r.toml").write_text('name = "r"\n[generator]\npreset = "mine.toml"\n')
    monkeypatch.chdir(REPO)  # not the recipe's folder: the preset is relative to the recipe

    def train_gen():
        recipe = load_recipe(tmp_path / "r.toml")
        assert recipe.section("generator")["preset"] == str(tmp_path / "mine.toml")
        stage = next(s for s in build_stages(recipe) if s.name == "train-gen")
        return stage, {i.stage.name: i.key for i in plan(build_stages(recipe), tmp_path)}["train-gen"]

    stage, key = train_gen()
    assert stage.settings["resolved"]["model"]["hidden"] == 8
    (tmp_path / "mine.toml").write_text(preset.replace("hidden = 8 ", "hidden = 16 "))
    stage, edited = train_gen()
    assert stage.settings["resolved"]["model"]["hidden"] == 16 and edited != key


def _stages(calls: list[str], a_setting: int = 1, b_setting: int = 1) -> list[Stage]:
    def make(name):
        def run(ctx):
            calls.append(name)
            (ctx.folder / "out.txt").write_text(name)
            return {"inputs": sorted(ctx.inputs)}

        return run

    return [
        Stage("a", "a", {"x": a_setting}, make("a")),
        Stage("b", "b", {"y": b_setting}, make("b"), depends=("a",)),
        Stage("c", "c", {}, make("c")),  # independent of a and b
        Stage("d", "d", {}, make("d"), depends=("b", "c")),
    ]


def test_runner_skips_done_and_redoes_downstream(tmp_path):
    calls: list[str] = []
    execute(plan(_stages(calls), tmp_path), log=lambda _: None)
    assert calls == ["a", "b", "c", "d"]
    calls.clear()
    items = plan(_stages(calls), tmp_path)
    assert [i.action for i in items] == ["reuse"] * 4
    execute(items, log=lambda _: None)
    assert calls == []
    # Changing b's setting redoes b and d only; a and c are reused.
    execute(plan(_stages(calls, b_setting=2), tmp_path), log=lambda _: None)
    assert calls == ["b", "d"]
    calls.clear()
    # Changing a's setting redoes a, b and d.
    execute(plan(_stages(calls, a_setting=5), tmp_path), log=lambda _: None)
    assert calls == ["a", "b", "d"]


def test_runner_resumes_interrupted_stage(tmp_path):
    calls: list[str] = []
    stages = _stages(calls)

    def boom(ctx):
        (ctx.folder / "partial").write_text("half")
        raise KeyboardInterrupt

    stages[1].run = boom
    with pytest.raises(KeyboardInterrupt):
        execute(plan(stages, tmp_path), log=lambda _: None)
    items = plan(_stages(calls), tmp_path)
    assert [i.action for i in items] == ["reuse", "resume", "run", "run"]
    execute(items, log=lambda _: None)
    assert calls == ["a", "b", "c", "d"]  # a ran in the first attempt
    assert (items[1].folder / "partial").exists()  # resumed in place, not wiped


def test_a_run_folder_can_move_and_be_read_from_any_working_directory(tmp_path, monkeypatch):
    """Summaries keep paths relative to the run folder, not to the directory the run started in."""

    def write(ctx):
        (ctx.folder / "weights.txt").write_text("trained")
        return {"weights": ctx.record(ctx.folder / "weights.txt")}

    def read(ctx):
        return {"read": ctx.inputs["a"].path("weights").read_text()}

    def stages():
        return [Stage("a", "a", {}, write), Stage("b", "b", {}, read, depends=("a",))]

    (tmp_path / "start").mkdir()
    monkeypatch.chdir(tmp_path / "start")
    execute(plan(stages(), Path("runs") / "r"), log=lambda _: None)  # a relative run folder, as recipes give it
    (tmp_path / "moved").mkdir()
    (tmp_path / "start" / "runs" / "r").rename(tmp_path / "moved" / "r")
    monkeypatch.chdir(tmp_path)
    items = plan(stages(), Path("moved") / "r", start="b")
    assert [i.action for i in items] == ["reuse", "run"]
    assert execute(items, log=lambda _: None)["b"].summary == {"read": "trained"}


def test_only_and_from(tmp_path):
    calls: list[str] = []
    with pytest.raises(ConfigError, match="needs a first"):
        execute(plan(_stages(calls), tmp_path, only="b"), log=lambda _: None)
    execute(plan(_stages(calls), tmp_path, only="a"), log=lambda _: None)
    assert calls == ["a"]
    execute(plan(_stages(calls), tmp_path), log=lambda _: None)
    calls.clear()
    execute(plan(_stages(calls), tmp_path, start="b"), log=lambda _: None)
    assert calls == ["b", "c", "d"]
    with pytest.raises(ConfigError, match="no such stage"):
        plan(_stages(calls), tmp_path, only="zzz")
    assert "reuse" in format_plan(plan(_stages(calls), tmp_path))


def test_stage_patterns_split_a_plan_between_processes(tmp_path):
    calls: list[str] = []
    items = plan(_stages(calls), tmp_path, names=["c", "a*"])
    assert [i.action for i in items] == ["run", "skip", "run", "skip"]
    execute(items, log=lambda _: None)
    assert calls == ["a", "c"]
    with pytest.raises(ConfigError, match="needs b first.*--wait"):
        execute(plan(_stages(calls), tmp_path, names=["d"]), log=lambda _: None)
    with pytest.raises(ConfigError, match="'zz\\*': matches no stage"):
        plan(_stages(calls), tmp_path, names=["b", "zz*"])


def test_wait_takes_inputs_another_process_finishes(tmp_path):
    calls: list[str] = []
    execute(plan(_stages(calls), tmp_path, names=["a", "c"]), log=lambda _: None)
    waiting = plan(_stages(calls), tmp_path, names=["d"])
    other = plan(_stages(calls), tmp_path, names=["b"])
    polls: list[str] = []

    def poll(message: str) -> None:  # the "other process" finishes b while d waits
        polls.append(message)
        if "waiting for b" in message:
            execute(other, log=lambda _: None)

    results = execute(waiting, log=poll, wait=True, poll_seconds=0.01)
    assert calls == ["a", "c", "b", "d"] and results["d"].summary == {"inputs": ["b", "c"]}
    assert any("waiting for b" in m for m in polls)


def test_a_running_stage_is_locked_and_a_dead_holders_lock_is_taken_over(tmp_path):
    import json
    import os
    import socket
    import subprocess
    import sys

    calls: list[str] = []
    item = plan(_stages(calls), tmp_path)[0]
    lock = item.folder.with_name(item.folder.name + ".lock")
    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))  # a live holder: this test
    with pytest.raises(ConfigError, match=f"being run by process {os.getpid()}"):
        execute([item], log=lambda _: None)
    assert calls == [] and not item.folder.exists()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock.write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()}))
    execute([item], log=lambda _: None)
    assert calls == ["a"] and not lock.exists()


def test_overlapping_selections_wait_for_a_stage_another_process_holds_and_reuse_it(tmp_path):
    import json
    import os
    import socket

    calls: list[str] = []
    first = plan(_stages(calls), tmp_path, names=["a"])
    second = plan(_stages(calls), tmp_path, names=["a"])  # both processes selected a
    lock = first[0].folder.with_name(first[0].folder.name + ".lock")
    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))  # the first is running a
    messages: list[str] = []

    def log(message: str) -> None:  # while the second waits, the first finishes a and lets go
        messages.append(message)
        if "another process is running it" in message:
            lock.unlink()
            execute(first, log=lambda _: None)

    results = execute(second, log=log, wait=True, poll_seconds=0.01)
    assert calls == ["a"], "a ran once, in the first process"
    assert results["a"].reused and any("done by another process meanwhile" in m for m in messages)
    forced = plan(_stages(calls), tmp_path, start="a", names=["a"])
    execute(forced, log=lambda _: None)
    assert calls == ["a", "a"], "--from still redoes a finished stage"


def test_run_stage_option_plans_only_the_matching_stages(tmp_path):
    from typer.testing import CliRunner

    from augreid.cli import app

    args = ["run", str(REPO / "recipes" / "demo.toml"), "--output", str(tmp_path), "--dry-run"]
    result = CliRunner().invoke(app, [*args, "--stage", "train-reid-baseline-*", "--stage", "check"])
    assert result.exit_code == 0, result.output
    actions = dict(line.split()[:2] for line in result.output.splitlines()[1:] if line.strip())
    assert actions["check"] == "run" and actions["train-reid-baseline-s0"] == "run"
    assert actions["train-gen"] == "skip" and actions["train-reid-augmented-s0"] == "skip"
    bad = CliRunner().invoke(app, [*args, "--stage", "trian-*"])
    assert bad.exit_code != 0 and "'trian-*': matches no stage" in bad.output
    assert not any(tmp_path.iterdir())  # a dry run writes nothing
