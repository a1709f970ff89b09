"""An error raised inside a DataLoader worker reaches the user as the same one-line message as in the main process."""

from __future__ import annotations

import pytest
import typer
from torch.utils.data import DataLoader, Dataset
from typer.testing import CliRunner

from augreid.cli.common import user_errors
from augreid.errors import DatasetError, user_message


class Broken(Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int):
        raise DatasetError("0007_c2s1_002375_01.jpg: image is 256x128 (HxW) but the generator works at 128x64")


def _load(workers: int) -> None:
    for _ in DataLoader(Broken(), batch_size=1, num_workers=workers):
        pass


@pytest.mark.parametrize("workers", [0, 1])
def test_a_worker_error_is_one_line_with_exit_code_2(workers):
    app = typer.Typer()

    @app.command()
    @user_errors
    def load() -> None:
        _load(workers)

    result = CliRunner().invoke(app, [])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == ["error: 0007_c2s1_002375_01.jpg: image is 256x128 (HxW) but the generator works at 128x64"]


def test_a_multi_line_message_from_a_worker_keeps_its_lines():
    class Listing(Broken):
        def __getitem__(self, i: int):
            raise DatasetError("2 problems:\n  - a\n  - b")

    with pytest.raises(DatasetError) as err:
        for _ in DataLoader(Listing(), batch_size=1, num_workers=1):
            pass
    assert "Traceback" in str(err.value) and user_message(err.value) == "2 problems:\n  - a\n  - b"
