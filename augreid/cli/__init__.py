"""The ``augreid`` command line. Parses arguments and calls the library; no logic lives here.

Every command's settings are one dataclass, loaded by ``augreid.settings``: its
defaults, then ``--config FILE``, then the options and ``--set key=value``.
The library is imported inside the commands, and the dataclasses only when a
command's help is shown (``SettingsHelp``): importing any of them pulls in
torch and torchreid through their packages (5 to 8 s measured), against 0.1 s
for ``augreid --help`` without them.
"""

from augreid.cli import data_cmds, generate_cmds, reid_cmds, run_cmd  # noqa: F401  (each registers its commands)
from augreid.cli.common import app, main

__all__ = ["app", "main"]
