"""The ``augreid`` application object and what every command shares: one-line errors, ``--config``/``--set``, help defaults."""

from __future__ import annotations

import functools
import importlib
import sys
from typing import Any

import typer
from typer.core import TyperCommand

from augreid import __version__, settings
from augreid.errors import AugreidError, is_environment_error, output_error, user_message

app = typer.Typer(
    name="augreid",
    help="Person re-ID data augmentation: PG2 pose-guided synthesis, torchreid training, honest evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help text: rich markup would swallow the "[default]" brackets in option help.
    rich_markup_mode=None,
)
data_app = typer.Typer(help="Inspect datasets and keypoints.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"augreid {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """augreid: pose-guided data augmentation for person re-identification."""


def user_errors(func):
    """Print ``AugreidError`` as a one-line message and exit 2, instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except AugreidError as err:
            typer.secho(f"error: {user_message(err)}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        except OSError as err:
            # A full disk or a read-only/unusable --out reached a plain mkdir or open somewhere:
            # the user's environment, not a bug, so one line naming the path.
            if not is_environment_error(err):
                raise
            typer.secho(f"error: {output_error(err, action='cannot use')}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None

    return wrapper


DatasetOpt = typer.Option(None, "--data", "-d", help="Market-layout dataset root (default: the embedded demo dataset).")


def config_option(example: str = "") -> Any:
    return typer.Option(None, "--config", help=f"TOML settings file{example}; options and --set override it.")


def set_option(example: str) -> Any:
    return typer.Option(
        None, "--set", help=f"Any setting as key=value (a TOML literal), e.g. --set {example} (repeatable)."
    )


class SettingsHelp(TyperCommand):
    """A command whose help appends each option's default, read from its settings dataclass when help is shown."""

    settings_class = ""  # "module:Class"
    option_keys: dict[str, str] = {}  # option name -> settings key, where they differ

    def format_help(self, ctx: Any, formatter: Any) -> None:
        module, _, name = self.settings_class.partition(":")
        cls = getattr(importlib.import_module(module), name)
        known = settings.fields(cls)
        for param in self.params:
            key = self.option_keys.get(param.name or "", param.name or "")
            help_text = getattr(param, "help", None)
            if key in known and help_text and "[default:" not in help_text:
                param.help = f"{help_text} [default: {settings.show_default(cls, key)}]"  # type: ignore[attr-defined]
        super().format_help(ctx, formatter)


def defaults_from(target: str, **option_keys: str) -> type[TyperCommand]:
    """``cls=`` for a command whose settings dataclass is ``target`` ("module:Class")."""
    return type("SettingsHelp", (SettingsHelp,), {"settings_class": target, "option_keys": option_keys})


# ---------------------------------------------------------------- data


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
