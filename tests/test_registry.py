"""augreid.registry: the lazy name -> plug-in table behind every extension point."""

from __future__ import annotations

import sys

import pytest

from augreid.errors import ConfigError
from augreid.registry import Registry

MODULE = "augreid_registry_throwaway_plugin"


@pytest.fixture
def throwaway_module(tmp_path, monkeypatch):
    """A module on sys.path that nothing has imported yet (and that is forgotten afterwards)."""
    (tmp_path / f"{MODULE}.py").write_text("PLUGIN = {'made': 'on import'}\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, MODULE, raising=False)
    yield MODULE
    sys.modules.pop(MODULE, None)


def test_a_string_target_is_imported_on_first_get_only(throwaway_module):
    registry: Registry[dict] = Registry("widget", {"other": {"made": "eagerly"}})
    registry.register("thing", f"{throwaway_module}:PLUGIN")
    assert registry.names() == ["other", "thing"] and "thing" in registry and "nope" not in registry
    assert throwaway_module not in sys.modules  # registering and listing import nothing
    assert registry.get("thing") == {"made": "on import"}
    assert throwaway_module in sys.modules
    assert registry.get("thing") is sys.modules[throwaway_module].PLUGIN  # resolved once, then kept


def test_an_unknown_name_lists_the_known_ones():
    registry: Registry[int] = Registry("widget", {"b": 2, "a": 1})
    with pytest.raises(ConfigError, match=r"^unknown widget 'c'; known: a, b$"):
        registry.get("c")
    assert Registry[int]("widget").names() == []


@pytest.mark.parametrize(
    "target", [f"{MODULE}_missing:PLUGIN", f"{MODULE}:NOT_THERE"], ids=["missing module", "missing attribute"]
)
def test_an_unimportable_target_is_a_config_error_naming_it(throwaway_module, target):
    registry: Registry[object] = Registry("widget", {"broken": target})
    with pytest.raises(ConfigError, match="widget 'broken' cannot be imported from") as caught:
        registry.get("broken")
    assert target in str(caught.value)
    assert registry.entries["broken"] == target  # nothing cached: the next get fails the same way
    with pytest.raises(ConfigError, match="not 'module:attribute'"):
        Registry[object]("widget", {"bare": MODULE}).get("bare")


def test_the_table_is_shared_not_copied(monkeypatch):
    table: dict[str, int | str] = {"a": 1}
    registry: Registry[int] = Registry("widget", table)
    monkeypatch.setitem(table, "b", 2)  # how tests add a plug-in for their own duration
    assert registry.get("b") == 2
    registry.unregister("a")
    registry.unregister("never registered")
    assert table == {"b": 2} and registry.names() == ["b"]


def test_every_extension_point_uses_it():
    from augreid.data import importers
    from augreid.pose_estimation import base as estimators
    from augreid.reid import methods
    from generators import base as generators

    for module, lister, kind in [
        (generators, generators.generator_names, "generator"),
        (methods, methods.method_names, "re-ID method"),
        (estimators, estimators.estimator_names, "pose estimator"),
        (importers, importers.importer_names, "dataset format"),
    ]:
        registries = [value for value in vars(module).values() if isinstance(value, Registry)]
        assert len(registries) == 1 and registries[0].kind == kind
        assert registries[0].entries is module._REGISTRY and lister() == sorted(module._REGISTRY)
