"""The ``augreid`` command line. Parses arguments and calls the library; no logic lives here.

Every command's settings are one dataclass, loaded by ``augreid.settings``: its
defaults, then ``--config FILE``, then the options and ``--set key=value``.
The library is imported inside the command bodies, and a settings dataclass only
when its command's help is shown (``SettingsHelp``): torch and torchreid take
seconds to import, and ``augreid --help``, a typo or a bad option should answer
at once, without them.
"""

from augreid.cli import data_cmds, generate_cmds, reid_cmds, model_cmds, run_cmd  # noqa: F401  (each registers its commands)
from augreid.cli.common import app, main

__all__ = ["app", "main"]
