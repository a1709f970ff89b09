"""Issue 15, item 4: unusable outputs, full disks, broken checkpoints and recipes give one line, lose nothing."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest
import torch

from augreid.errors import OutputError
from augreid.io import atomic_write_bytes, clean_stale_temporaries
from robustness_util import assert_one_line_error, invoke, tiny_gen_args, tree_digest

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_gen(tmp_path_factory, demo_root) -> Path:
    """A finished tiny PG2 run folder with checkpoints at steps 3 and 6."""
    out = tmp_path_factory.mktemp("gen") / "run"
    result = invoke("train-gen", "--data", demo_root, "--out", out, "--threads", "1", "--quiet", *tiny_gen_args())
    assert result.exit_code == 0, result.output
    return out


def truncated_copy(tiny_gen: Path, dest: Path) -> Path:
    """A copy of the latest checkpoint (weights + JSON) with the weights cut short."""
    dest.mkdir(parents=True, exist_ok=True)
    weights = tiny_gen / "checkpoints" / "step_00000006.safetensors"
    shutil.copy(weights.with_suffix(".json"), dest / "broken.json")
    (dest / "broken.safetensors").write_bytes(weights.read_bytes()[:5000])
    return dest / "broken.safetensors"


# ---------------------------------------------------------------- the atomic-write layer


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_atomic_write_maps_disk_errors_and_keeps_the_old_file(tmp_path, monkeypatch, code):
    target = tmp_path / "result.json"
    target.write_text("old")

    def failing_replace(src, dst):
        raise OSError(code, os.strerror(code), str(dst))

    monkeypatch.setattr("augreid.io.os.replace", failing_replace)
    with pytest.raises(OutputError, match=str(target)) as info:
        atomic_write_bytes(target, b"new")
    assert "\n" not in str(info.value)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temporary left behind


def test_full_disk_is_one_line_in_the_cli_and_keeps_the_previous_output(tmp_path, demo_root, monkeypatch):
    out = tmp_path / "sheet.png"
    out.write_bytes(b"previous sheet")

    def disk_full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr("augreid.io.os.replace", disk_full)
    result = invoke("data", "sheet", out, "--data", demo_root, "--ids", "2", "--per-id", "2")
    assert_one_line_error(result, str(out), "no space left")
    assert out.read_bytes() == b"previous sheet"


@pytest.mark.parametrize("kind", ["file", "proc"])
def test_unusable_out_folder_for_data_sheet(tmp_path, demo_root, kind):
    if kind == "file":
        parent = tmp_path / "afile"
        parent.write_text("keep me")
    else:
        parent = Path("/proc/augreid-test-out")
        if not Path("/proc/self").exists():
            pytest.skip("no /proc here")
    result = invoke("data", "sheet", parent / "sheet.png", "--data", demo_root, "--ids", "2", "--per-id", "2")
    assert_one_line_error(result, str(parent))
    if kind == "file":
        assert parent.read_text() == "keep me"


def test_train_gen_out_that_is_a_file(tmp_path, demo_root):
    out = tmp_path / "afile"
    out.write_text("keep me")
    result = invoke("train-gen", "--data", demo_root, "--out", out, "--quiet", "--threads", "1", *tiny_gen_args())
    assert_one_line_error(result, str(out))
    assert out.read_text() == "keep me"


def test_read_only_folder_is_one_line(tmp_path, demo_root, monkeypatch):
    """Root ignores file modes, so a read-only file system is simulated where files get created."""
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", kwargs.get("dir"))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    result = invoke("data", "sheet", tmp_path / "sheet.png", "--data", demo_root, "--ids", "2", "--per-id", "2")
    assert_one_line_error(result, "sheet.png", "read-only")


def test_recipe_with_non_utf8_bytes(tmp_path):
    recipe = tmp_path / "bad.toml"
    recipe.write_bytes(b'name = "x"\n# caf\xe9 in latin-1\n')
    result = invoke("run", recipe, "--dry-run")
    assert_one_line_error(result, f"{recipe}:2", "UTF-8")


def test_zero_byte_jpeg_in_data_sheet(tmp_path, demo_root):
    data = tmp_path / "data"
    shutil.copytree(demo_root, data)
    broken = sorted((data / "Market-1501-v15.09.15" / "bounding_box_train").glob("*.jpg"))[0]
    broken.write_bytes(b"")
    result = invoke("data", "sheet", tmp_path / "s.png", "--data", data, "--ids", "2", "--per-id", "3")
    assert_one_line_error(result, broken.name, "unreadable")
    assert not (tmp_path / "s.png").exists()


# ---------------------------------------------------------------- broken checkpoints


def test_truncated_safetensors_in_eval_gen_and_synth(tmp_path, tiny_gen, demo_root):
    broken = truncated_copy(tiny_gen, tmp_path / "ckpt")
    result = invoke("eval-gen", broken, "--data", demo_root, "--max-pairs", "2", "--quiet", "--out", tmp_path / "e")
    assert_one_line_error(result, str(broken), "corrupt")
    result = invoke(
        "synth",
        "--data",
        demo_root,
        "--generator",
        broken,
        "--out",
        tmp_path / "s",
        "--max-ids",
        "1",
        "--no-progress",
        "--device",
        "cpu",
    )
    assert_one_line_error(result, str(broken), "corrupt")


def test_lone_truncated_safetensors_without_json(tmp_path, tiny_gen, demo_root):
    broken = truncated_copy(tiny_gen, tmp_path / "ckpt")
    broken.with_suffix(".json").unlink()
    result = invoke("eval-gen", broken, "--data", demo_root, "--max-pairs", "2", "--quiet", "--out", tmp_path / "e")
    assert_one_line_error(result, str(broken))


def test_train_gen_resume_falls_back_to_the_newest_intact_checkpoint(tmp_path, tiny_gen, demo_root):
    run = tmp_path / "run"
    shutil.copytree(tiny_gen, run)
    ckpts = run / "checkpoints"
    latest = ckpts / "step_00000006.safetensors"
    latest.write_bytes(latest.read_bytes()[:4000])  # killed mid-copy, or a bad disk
    stale = ckpts / ".step_00000009.state.pt.k3j_x9qa.tmp"  # a SIGKILL during a write
    stale.write_bytes(b"\0" * 1000)
    user_file = ckpts / "my-notes.tmp"  # not a name augreid writes: must survive
    user_file.write_text("mine")
    result = invoke("train-gen", "--data", demo_root, "--out", run, "--quiet", "--threads", "1", *tiny_gen_args())
    assert result.exit_code == 0, result.output
    assert "resuming from step 3" in result.output and "corrupt" in result.output
    assert "finished at step 6/6" in result.output
    assert not stale.exists() and user_file.read_text() == "mine"
    assert (ckpts / "step_00000006.corrupt.json").is_file()  # set aside, not deleted
    from generators.pg2.checkpoint import load_generator

    assert load_generator(ckpts / "step_00000006.safetensors").g1 is not None  # rewritten, intact


def test_every_checkpoint_corrupt_is_one_line(tmp_path, tiny_gen, demo_root):
    run = tmp_path / "run"
    shutil.copytree(tiny_gen, run)
    for weights in (run / "checkpoints").glob("*.safetensors"):
        weights.write_bytes(b"garbage")
    result = invoke("train-gen", "--data", demo_root, "--out", run, "--quiet", "--threads", "1", *tiny_gen_args())
    assert_one_line_error(result, "every checkpoint is corrupt")


def test_clean_stale_temporaries_touches_only_atomic_write_leftovers(tmp_path):
    ours = tmp_path / ".checkpoint.pth.abcd_123.tmp"
    ours.write_bytes(b"x")
    for name in ("notes.tmp", ".hidden.tmp", "data.csv"):
        (tmp_path / name).write_text("user")
    assert clean_stale_temporaries(tmp_path) == [ours]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden.tmp", "data.csv", "notes.tmp"]


def test_text_file_renamed_pth_in_eval(tmp_path, demo_root):
    fake = tmp_path / "model.pth"
    fake.write_text("hello, I am not a checkpoint\n")
    result = invoke("eval", "--run", f"a={fake}", "--data", demo_root, "--quiet", "--out", tmp_path / "e")
    assert_one_line_error(result, str(fake), "not a loadable re-ID checkpoint")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_asked_for_without_cuda_in_synth_and_eval_gen(tmp_path, tiny_gen, demo_root):
    before = tree_digest(tiny_gen)
    result = invoke("eval-gen", tiny_gen, "--data", demo_root, "--device", "cuda", "--quiet", "--out", tmp_path / "e")
    assert_one_line_error(result, "--device cuda", "no CUDA")
    result = invoke(
        "synth",
        "--data",
        demo_root,
        "--generator",
        tiny_gen,
        "--out",
        tmp_path / "s",
        "--device",
        "cuda",
        "--no-progress",
    )
    assert_one_line_error(result, "--device cuda", "no CUDA")
    assert not (tmp_path / "s").exists() and tree_digest(tiny_gen) == before
