"""Shared fixtures.

* Every test session gets its own ``AUGREID_HOME`` so nothing touches the
  user's cache and the demo dataset is generated fresh (deterministically).
* Tests that need the real data in ``../shared/data`` use the ``shared_data``
  fixtures and are skipped cleanly when that folder is absent.
* Tests that need an optional dependency (MediaPipe of the ``[pose]`` extra, the
  ``[dev]`` tools) ask the ``extras`` fixture for it: absent, the test skips,
  unless ``AUGREID_REQUIRE_EXTRAS`` is set (``.ci/run`` sets it, having installed
  both extras), and then it fails: a broken extra must not pass as a skip.
"""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parents[1]


REQUIRE_EXTRAS = "AUGREID_REQUIRE_EXTRAS"


class Extras:
    """Optional dependencies: skip without them, fail instead when ``AUGREID_REQUIRE_EXTRAS`` is set."""

    @staticmethod
    def missing(reason: str) -> NoReturn:
        if os.environ.get(REQUIRE_EXTRAS):
            pytest.fail(f"{REQUIRE_EXTRAS} is set, but {reason}", pytrace=False)
        pytest.skip(reason)

    def module(self, name: str, extra: str) -> ModuleType:
        """``import name``, or skip (fail) saying which extra provides it."""
        try:
            return importlib.import_module(name)
        except ImportError as err:
            self.missing(f"{name} cannot be imported ({err}); it comes with the {extra} extra")

    def tool(self, name: str, extra: str = "[dev]") -> str:
        """The path of the command ``name``, or skip (fail) saying which extra installs it."""
        path = shutil.which(name)
        if path is None:
            self.missing(f"{name} is not installed (pip install -e '.{extra}')")
        return path


@pytest.fixture(scope="session")
def extras() -> Extras:
    return Extras()


def _shared_data_dir() -> Path:
    return Path(os.environ.get("AUGREID_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def augreid_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("augreid_home")
    old = os.environ.get("AUGREID_HOME")
    os.environ["AUGREID_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("AUGREID_HOME", None)
    else:
        os.environ["AUGREID_HOME"] = old


@pytest.fixture(scope="session")
def demo_root(augreid_home: Path) -> Path:
    """The embedded demo dataset (seed 0), generated once per test session."""
    from augreid.data.sources import demo_root as _demo_root

    return _demo_root()


@pytest.fixture(scope="module")
def market(demo_root: Path):
    """The demo dataset's ``MarketDataset``."""
    from augreid.data import load_market

    return load_market(demo_root)


@pytest.fixture(scope="module")
def synth_root(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in synthetic folder (mirrored demo training images on camera 10; ``reid_helpers.make_synthetic``)."""
    from reid_helpers import make_synthetic

    return make_synthetic(demo_root, tmp_path_factory.mktemp("synth") / "S", camera="c10")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = _shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} is absent")
    return path


@pytest.fixture(scope="session")
def market_keypoints_dir(shared_data: Path) -> Path:
    path = shared_data / "market1501-keypoints"
    if not path.is_dir():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture(scope="session")
def cuhk03_root(shared_data: Path) -> Path:
    """``../shared/data/cuhk03-market`` (holds Market-1501-v15.09.15/ and the keypoint CSVs)."""
    path = shared_data / "cuhk03-market"
    if not (path / "Market-1501-v15.09.15").is_dir():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tests with one torch thread.

    Tests share two cores with other processes; OpenMP threads spinning against
    each other make small convolutions an order of magnitude slower.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
