"""The one settings loader (augreid.settings) and the commands and recipe sections built on it."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Literal

import pytest
from typer.testing import CliRunner

from augreid import settings
from augreid.cli import app
from augreid.errors import ConfigError
from augreid.evaluation.options import EvalOptions, GeneratorEvalOptions, resolve_options
from augreid.pipeline.recipe import RENAMED, validate
from augreid.pipeline.reid_section import RUNNER_KEYS
from augreid.reid.config import ReidConfig, resolve_config
from augreid.synth.config import SynthConfig, load_synth_config
from generators.pg2.config import PG2Config, load_preset


@dataclass
class Inner:
    steps: int = 10
    rate: float = 0.5


@dataclass
class Example:
    epochs: int = 3
    mode: Literal["fast", "slow"] = "fast"
    ratio: float | None = None
    ranks: list[int] = field(default_factory=lambda: [1, 5])
    size: tuple[int, int] = (128, 64)
    filters: dict[str, float] = field(default_factory=lambda: {"pckh": 0.2})
    train: Inner = field(default_factory=Inner)

    def problems(self) -> list[str]:
        return [f"epochs: {self.epochs} must be at least 1"] if self.epochs < 1 else []


def _problems(values: dict, cls: type = Example) -> str:
    with pytest.raises(ConfigError) as err:
        settings.load(cls, [settings.Layer("test.toml", values)])
    return str(err.value)


def test_defaults_come_from_the_dataclass_and_layers_apply_in_order():
    assert settings.load(Example) == Example()
    loaded = settings.load(
        Example,
        [
            settings.Layer("a", {"epochs": 5, "train": {"steps": 2}}),
            settings.Layer("b", {"train": {"rate": 1}, "size": [64, 32]}),
        ],
    )
    assert loaded.epochs == 5 and loaded.train == Inner(steps=2, rate=1.0) and loaded.size == (64, 32)
    assert isinstance(loaded.train.rate, float)  # an int is accepted where a float is expected


def test_every_problem_is_reported_at_once():
    text = _problems(
        {
            "epochs": 0,
            "mode": "medium",
            "ranks": [1, "x"],
            "size": [1],
            "filters": 0.2,
            "train": {"steps": "many", "colour": 1},
            "extra": 1,
        }
    )
    expected = [
        "epochs: 0 must be at least 1",
        "mode: 'medium' is not one of fast, slow",
        "ranks[1]: expected int",
        "size: expected a list of 2 values",
        "filters: expected a table",
        "train.steps: expected int",
        "train.colour: unknown key in test.toml",
        "extra: unknown key in test.toml",
    ]
    for line in expected:
        assert line in text, line
    assert text.count("\n  - ") == len(expected)


def test_unknown_key_suggests_the_closest_name():
    assert "epoch: unknown key in test.toml (did you mean 'epochs'?)" in _problems({"epoch": 3})
    assert "train.stepz: unknown key in test.toml (did you mean 'steps'?)" in _problems({"train": {"stepz": 1}})
    assert "trian: unknown section in test.toml (did you mean 'train'?)" in _problems({"trian": {"steps": 1}})
    assert "zzz: unknown key in test.toml (known: epochs, filters," in _problems({"zzz": 1})


def test_a_bool_is_not_an_int_and_an_int_is_not_a_bool():
    assert "epochs: expected int, got a boolean" in _problems({"epochs": True})
    assert "train.rate: expected float, got a boolean" in _problems({"train": {"rate": False}})
    assert "evaluate: expected true/false, got 1" in _problems({"evaluate": 1}, ReidConfig)


def test_optional_values_and_tables():
    loaded = settings.load(Example, [settings.Layer("a", {"ratio": 1, "filters": {}})])
    assert loaded.ratio == 1.0 and loaded.filters == {}  # a table replaces the default table, it is not merged
    assert settings.load(Example, [settings.Layer("a", {"ratio": None})]).ratio is None


def test_set_overrides_nested_keys():
    overrides = settings.nest(settings.parse_sets(["train.steps=7", "train.rate=2", "mode=slow"]))
    loaded = settings.load(Example, [settings.Layer("--set", overrides)])
    assert loaded.train == Inner(steps=7, rate=2.0) and loaded.mode == "slow"
    config = load_preset("cpu-small", settings.parse_sets(["train.stage1_steps=5", "model.activation=elu"]))
    assert config.train.stage1_steps == 5 and config.model.activation == "elu"
    with pytest.raises(ConfigError, match="train.stage1_stepz: unknown key.*did you mean 'stage1_steps'"):
        load_preset("cpu-small", {"train.stage1_stepz": 5})


def test_a_key_given_as_an_option_and_with_set_is_an_error():
    with pytest.raises(ConfigError, match="--set epochs: given twice"):
        settings.command_overrides({"epochs": 3, "lr": None}, ["epochs=4"])
    assert settings.command_overrides({"epochs": None}, ["epochs=4"]) == {"epochs": 4}


def test_resolved_settings_render_as_toml_that_loads_back(tmp_path):
    config = resolve_config(None, {"epochs": 2, "synthetic": str(tmp_path), "synthetic_per_batch": 4})
    path = tmp_path / "config.toml"
    path.write_text(config.to_toml())
    assert resolve_config(path) == config
    pg2 = load_preset("cpu-small-hd")
    (tmp_path / "pg2.toml").write_text(settings.to_toml(pg2))
    assert load_preset(tmp_path / "pg2.toml").to_dict() == pg2.to_dict()
    example = Example(ratio=float("inf"), filters={"pose": 0.5})
    (tmp_path / "example.toml").write_text(settings.to_toml(example))
    assert settings.load(Example, [settings.file_layer(tmp_path / "example.toml")]) == example


def test_recipe_sections_are_exactly_the_commands_dataclasses():
    recipe = validate({"name": "x"})

    def keys(cls: type) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    assert set(recipe.section("reid")) == keys(ReidConfig) - set(RUNNER_KEYS)
    assert set(recipe.section("eval")) == keys(EvalOptions) - {"cache_dir"}
    assert set(recipe.section("synth")) == keys(SynthConfig)
    assert set(recipe.section("eval_gen")) == keys(GeneratorEvalOptions)
    assert recipe.section("synth") == dataclasses.asdict(SynthConfig())
    assert recipe.section("eval_gen") == dataclasses.asdict(GeneratorEvalOptions())
    with pytest.raises(ConfigError, match="reid.seed: set per stage by the runner"):
        validate({"name": "x", "reid": {"seed": 3}})


def test_generator_tables_are_the_plugins_own_settings():
    recipe = validate({"name": "x", "generator": {"preset": "cpu-small", "train": {"stage1_steps": 5}}})
    assert recipe.section("generator")["train"] == {"stage1_steps": 5}
    with pytest.raises(ConfigError) as err:
        validate({"name": "x", "generator": {"train": {"stage1_steps": "many", "stepz": 1}}})
    assert "generator.train.stage1_steps: expected int" in str(err.value)
    assert "generator.train.stepz: unknown key" in str(err.value)


@pytest.mark.parametrize("old", sorted(RENAMED))
def test_old_recipe_keys_name_the_new_key(old):
    section, _, key = old.partition(".")
    with pytest.raises(ConfigError) as err:
        validate({"name": "x", section: {key: 1}})
    line = next(line for line in str(err.value).splitlines() if old in line)
    assert f"{old}: unknown key" in line and RENAMED[old] in line
    new = re.search(r"write (\S+)", RENAMED[old]) or re.search(r"`(\w+)`", RENAMED[old])
    assert new is not None and new.group(1) in line


def _help(command: str) -> str:
    result = CliRunner().invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


@pytest.mark.parametrize(
    "command, option, cls, key",
    [
        ("train-reid", "--epochs", ReidConfig, "epochs"),
        ("train-reid", "--lr", ReidConfig, "lr"),
        ("eval", "--resamples", EvalOptions, "resamples"),
        ("synth", "--workers", SynthConfig, "num_workers"),
        ("eval-gen", "--max-pairs", GeneratorEvalOptions, "max_pairs"),
    ],
)
def test_cli_help_shows_the_dataclass_default(command, option, cls, key, monkeypatch):
    text = _help(command)
    assert re.search(rf"{option} <\w+> [^[]*\[default: {re.escape(settings.show_default(cls, key))}\]", text)
    # Read from the dataclass when help is shown, not written into the help by hand.
    monkeypatch.setattr(cls, "__init__", _with_default(cls, key, 4242))
    assert "[default: 4242]" in _help(command)


def _with_default(cls: type, key: str, value: object):
    original = cls.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if key not in kwargs:
            setattr(self, key, value)

    return init


def test_eval_flip_has_one_default_everywhere():
    default = EvalOptions().flip
    assert resolve_options().flip == default
    assert validate({"name": "x"}).section("eval")["flip"] == default
    assert f"image. [default: {settings.toml_value(default)}]" in _help("eval")


def test_commands_take_config_files(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text("[eval]\nresamples = 7\n[synth]\nnum_poses = 3\n[eval_gen]\nmax_pairs = 9\n")
    assert resolve_options(path, {"seed": 2}).resamples == 7
    assert load_synth_config(path).num_poses == 3
    from augreid.evaluation.options import resolve_generator_eval

    assert resolve_generator_eval(path).max_pairs == 9
    with pytest.raises(ConfigError, match="resamples: must be at least 1"):
        resolve_options(None, {"resamples": 0})


def test_saved_pg2_configs_keep_defaults_for_keys_added_later():
    saved = PG2Config().to_dict()
    del saved["train"]["fm_weight"]
    assert PG2Config.from_dict(saved) == PG2Config()


def test_toml_written_with_any_character_parses_back(tmp_path):
    """Characters outside the Basic Multilingual Plane stay literal: an escaped surrogate pair is not TOML."""
    folder = tmp_path / 'data 😀 "quoted" back\\slash'
    config = resolve_config(None, {"epochs": 2, "data": str(folder)})
    path = tmp_path / "config.toml"
    path.write_text(config.to_toml(), encoding="utf-8")
    assert resolve_config(path) == config


def test_the_reports_recipe_block_is_toml_that_parses_back():
    import tomllib

    from augreid.pipeline.recipe import validate
    from augreid.pipeline.report import recipe_text

    recipe = validate(
        {"name": "r 😀", "reid": {"epochs": 4, "channels_last": True}, "synth": {"min_quality": {"pckh": 0.2}}}
    )
    parsed = tomllib.loads(recipe_text(recipe.settings))
    assert parsed["name"] == "r 😀" and parsed["reid"]["channels_last"] is True and parsed["reid"]["epochs"] == 4
    assert parsed["synth"]["min_quality"] == {"pckh": 0.2} and "pretrained" in parsed["reid"]
