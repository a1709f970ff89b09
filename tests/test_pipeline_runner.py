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
