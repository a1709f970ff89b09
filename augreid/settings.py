"""One settings loader for every command and every recipe section.

A command's settings are one dataclass whose fields carry the defaults (the only
place they are written). :func:`load` fills that dataclass from layers applied in
order, typically a TOML file (``--config FILE``) then ``--set key=value``
overrides, and checks every value against the field's type hint: ``bool``,
``int``, ``float`` (an int is accepted), ``str``, ``X | None``, ``list[T]``,
``tuple[T, ...]``, ``dict[str, T]``, ``Literal[...]`` (the allowed values) and
nested dataclasses (sections, addressed with dotted keys such as
``train.stage1_steps``). A dataclass may add its own value checks as a
``problems(self) -> list[str]`` method. Unknown keys (with the closest known
name), wrong types, bad choices and failed checks are all collected and raised
as one :class:`ConfigError`, so a user fixes everything in one go.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

from augreid.errors import ConfigError
from augreid.tomlfile import parse_override, read_toml

T = TypeVar("T")


@dataclass
class Layer:
    """Values from one place (a file, the command line); nested dicts for sections."""

    source: str  # named in "unknown key" messages, e.g. "config.toml" or "--set"
    values: Mapping[str, Any]


class _Bad:
    """A value that failed its type check; the field keeps its default so later checks still run."""


_BAD = _Bad()


# ---------------------------------------------------------------- layers


def file_layer(path: str | Path, table: str | None = None) -> Layer:
    """A TOML file's values; with ``table``, its ``[table]`` when it has one, else its top level."""
    data = read_toml(path)
    if table is not None and isinstance(data.get(table), dict):
        data = data[table]
    return Layer(str(path), data)


def nest(dotted: Mapping[str, Any]) -> dict[str, Any]:
    """``{"train.seed": 1}`` -> ``{"train": {"seed": 1}}``; whole tables (``{"train": {...}}``) merge in too."""
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        for section in reversed(key.split(".")):
            value = {section: value}
        out = merge(out, value)
    return out


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"seed": 1}}`` -> ``{"train.seed": 1}`` (the inverse of :func:`nest`)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def parse_sets(texts: Iterable[str]) -> dict[str, Any]:
    """``["train.seed=1", "lr=0.1"]`` -> ``{"train.seed": 1, "lr": 0.1}`` (values read as TOML literals)."""
    return dict(parse_override(text) for text in texts)


def command_layers(config_file: str | Path | None, table: str, options: Mapping[str, Any] | None) -> list[Layer]:
    """A command's layers: its ``--config`` file (top level, or its ``[table]``), then the options given (not ``None``)."""
    layers = [file_layer(config_file, table)] if config_file is not None else []
    return layers + [Layer("the options", {k: v for k, v in (options or {}).items() if v is not None})]


def command_overrides(options: Mapping[str, Any], sets: Iterable[str] | None) -> dict[str, Any]:
    """A command's options (``None`` = not given) merged with its ``--set`` values; a key given both ways is an error."""
    merged = {key: value for key, value in options.items() if value is not None}
    for key, value in parse_sets(sets or []).items():
        if key in merged:
            raise ConfigError(f"--set {key}: given twice (also as --{key.replace('_', '-')})")
        merged[key] = value
    return merged


# ---------------------------------------------------------------- loading


def load(
    cls: type[T], layers: Iterable[Layer] = (), *, what: str = "settings", hints: Mapping[str, str] | None = None
) -> T:
    """``cls``'s defaults overlaid by each layer in turn, checked; one ``ConfigError`` lists every problem."""
    problems: list[str] = []
    result = build(cls, list(layers), problems, hints=hints)
    if problems:
        raise invalid(f"{what} are invalid", problems)
    return result


def build(
    cls: type[T], layers: list[Layer], problems: list[str], *, prefix: str = "", hints: Mapping[str, str] | None = None
) -> T:
    """Like :func:`load`, but appends problems (each ``prefix.key: ...``) for the caller to report."""
    hinted = get_hints(cls)
    values: dict[str, Any] = {}
    for name in fields(cls):
        where = f"{prefix}{name}"
        if dataclasses.is_dataclass(hinted[name]):
            tables = [Layer(layer.source, _table(layer, name, where, problems)) for layer in layers]
            values[name] = build(hinted[name], tables, problems, prefix=f"{where}.", hints=hints)
            continue
        for layer in layers:
            if name in layer.values:
                checked = check_value(where, layer.values[name], hinted[name], problems)
                if checked is not _BAD:
                    values[name] = checked
    for layer in layers:
        for key, value in layer.values.items():
            if key not in hinted:
                problems.append(_unknown(f"{prefix}{key}", value, layer.source, list(hinted), hints or {}))
    try:
        result = cls(**values)
    except ConfigError as err:  # a dataclass that checks itself in __post_init__
        problems += [f"{prefix}{line}" for line in error_lines(err)]
        return cls()
    problems += [f"{prefix}{line}" for line in getattr(result, "problems", list)()]
    return result


def _table(layer: Layer, name: str, where: str, problems: list[str]) -> Mapping[str, Any]:
    value = layer.values.get(name, {})
    if isinstance(value, Mapping):
        return value
    problems.append(f"{where}: expected a table (a [{where}] section), got {value!r}")
    return {}


def _unknown(where: str, value: Any, source: str, known: list[str], hints: Mapping[str, str]) -> str:
    kind = "section" if isinstance(value, Mapping) else "key"
    if where in hints:
        return f"{where}: unknown {kind} in {source}; {hints[where]}"
    name = where.rpartition(".")[2]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = (
        f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(known))}" if known else "none is known"
    )
    return f"{where}: unknown {kind} in {source} ({hint})"


def error_lines(err: ConfigError) -> list[str]:
    """The problems inside a ``ConfigError`` raised by :func:`load` (or its whole message)."""
    text = str(err)
    lines = [line.strip()[2:] for line in text.splitlines()[1:] if line.strip().startswith("- ")]
    return lines or [text]


def invalid(headline: str, problems: list[str]) -> ConfigError:
    """One error listing every problem, one per line (the form :func:`error_lines` reads back)."""
    return ConfigError(f"{headline}:\n  - " + "\n  - ".join(problems))


def raise_problems(obj: Any, what: str = "settings") -> None:
    """Raise one ``ConfigError`` for ``obj.problems()``, for dataclasses that check themselves when built."""
    problems = obj.problems()
    if problems:
        raise invalid(f"{what} are invalid", problems)


# ---------------------------------------------------------------- types


def fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls) if f.init}


def get_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def check_value(where: str, value: Any, hint: Any, problems: list[str]) -> Any:
    """``value`` converted to ``hint`` (ints to floats, lists to tuples), or ``_BAD`` after adding a problem."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return check_value(where, value, inner[0] if len(inner) == 1 else Any, problems)
    if hint is Any:
        return value
    if origin is Literal:
        if value in args and type(value) is type(args[0]):
            return value
        return _fail(problems, f"{where}: {value!r} is not one of {', '.join(map(str, args))}")
    if origin in (list, tuple):
        return _check_sequence(where, value, origin, args, problems)
    if origin is dict:
        return _check_dict(where, value, args[1], problems)
    return _check_scalar(where, value, hint, problems)


def _fail(problems: list[str], message: str) -> _Bad:
    problems.append(message)
    return _BAD


def _check_sequence(where: str, value: Any, origin: type, args: tuple, problems: list[str]) -> Any:
    if not isinstance(value, (list, tuple)):
        return _fail(problems, f"{where}: expected a list, got {value!r}")
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(value) != len(args):
            return _fail(problems, f"{where}: expected a list of {len(args)} values, got {value!r}")
        item_types = list(args)
    else:
        item_types = [args[0] if args else Any] * len(value)
    count = len(problems)
    items = [check_value(f"{where}[{i}]", v, t, problems) for i, (v, t) in enumerate(zip(value, item_types))]
    if len(problems) > count:
        return _BAD
    return tuple(items) if origin is tuple else items


def _check_dict(where: str, value: Any, item_type: Any, problems: list[str]) -> Any:
    if not isinstance(value, Mapping):
        return _fail(problems, f"{where}: expected a table such as {{ name = value }}, got {value!r}")
    count = len(problems)
    items = {str(k): check_value(f"{where}.{k}", v, item_type, problems) for k, v in value.items()}
    return _BAD if len(problems) > count else items


def _check_scalar(where: str, value: Any, hint: Any, problems: list[str]) -> Any:
    if hint is bool:
        return value if isinstance(value, bool) else _fail(problems, f"{where}: expected true/false, got {value!r}")
    name = getattr(hint, "__name__", str(hint))
    if isinstance(value, bool):  # bool is an int subclass; `epochs = true` is a mistake
        return _fail(problems, f"{where}: expected {name}, got a boolean")
    if hint is float and isinstance(value, (int, float)):
        return float(value)
    if hint is int and isinstance(value, int):
        return value
    if hint is str and isinstance(value, (str, Path)):
        return str(value)
    return _fail(problems, f"{where}: expected {name}, got {type(value).__name__} {value!r}")


# ---------------------------------------------------------------- rendering


def default_of(cls: type, dotted: str) -> Any:
    """The default of ``section.key`` in ``cls`` (a fresh instance's value)."""
    value: Any = cls()
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def show_default(cls: type, dotted: str) -> str:
    """A field's default as written in TOML, for CLI help; ``not set`` for ``None``."""
    value = default_of(cls, dotted)
    return "not set" if value is None else toml_value(value)


def toml_value(value: Any) -> str:
    """TOML for the values a settings dataclass holds."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{toml_string(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (str, Path)):
        return toml_string(str(value))
    return json.dumps(value)


# TOML basic strings: escape the quote, the backslash and control characters; every other character, outside
# the Basic Multilingual Plane too, stays as it is (json.dumps would write a surrogate pair, which TOML forbids).
_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string."""
    out = []
    for char in text:
        if char in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def mapping_to_toml(values: Mapping[str, Any], section: str = "") -> list[str]:
    """TOML lines of nested mappings (tables for the nested ones); ``None`` values are left out."""
    tables = {k: v for k, v in values.items() if isinstance(v, Mapping)}
    lines = [f"{_toml_key(k)} = {toml_value(v)}" for k, v in values.items() if k not in tables and v is not None]
    for key, table in tables.items():
        name = f"{section}{_toml_key(key)}"
        lines += ["", f"[{name}]", *mapping_to_toml(table, f"{name}.")]
    return lines


def _toml_key(key: str) -> str:
    return key if key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key) else toml_string(key)


def to_toml(obj: Any, header: str = "") -> str:
    """``obj``'s resolved settings as TOML that :func:`file_layer` reads back; ``None`` values are left out."""
    lines = [f"# {line}" for line in header.splitlines()]
    lines += _toml_lines(obj, "")
    return "\n".join(lines) + "\n"


def _toml_lines(obj: Any, section: str) -> list[str]:
    values = {name: getattr(obj, name) for name in fields(type(obj))}
    tables = {k: v for k, v in values.items() if dataclasses.is_dataclass(v)}
    lines = [f"{k} = {toml_value(v)}" for k, v in values.items() if k not in tables and v is not None]
    for key, table in tables.items():
        name = f"{section}{key}"
        lines += ["", f"[{name}]", *_toml_lines(table, f"{name}.")]
    return lines


def merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` on top, table by table (a recipe, then a ``--config`` file, then ``--set``)."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
