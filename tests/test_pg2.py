"""PG2: presets, networks, data pipeline, training, checkpoints, exact resume, NaN stop, eval-gen, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from augreid.data import flip_pose, pose_maps
from augreid.data.keypoints import FLIP_ORDER
from augreid.errors import ConfigError
from augreid.tomlfile import parse_override
from generators.pg2 import find_latest_checkpoint, load_generator, load_preset, preset_names
from augreid.data.pose import scale_pose
from generators.common.data import PairDataset, StepBatchSampler
from generators.pg2.train import TrainingDiverged, prepare_data, train_generator
from test_pg2_networks import expected_g1_parameters

# A PG2 small enough for tests: 32x16 images, N = 3, a few channels.
TINY = {
    "model.image_size": [32, 16],
    "model.blocks": 3,
    "model.hidden": 8,
    "model.g2_hidden": 4,
    "model.d_hidden": 4,
    "model.d_layers": 2,
    "pose.radius": 1.5,
    "pose.mask_radius": 1.5,
    "data.max_pairs": 12,
    "train.batch_size": 4,
    "train.lr_g": 1e-3,
    "train.lr_d": 1e-3,
    "train.stage1_steps": 4,
    "train.stage2_steps": 4,
    "train.joint_steps": 2,
    "log.log_every": 1,
    "log.image_every": 5,
    "log.checkpoint_every": 3,
    "log.keep_last": 2,
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(**changes) -> "object":
    return load_preset("cpu-small", {**TINY, **changes})


@pytest.fixture(scope="module")
def tiny_data(demo_root):
    return prepare_data(tiny(), demo_root, progress=False)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_data, demo_root):
    out = tmp_path_factory.mktemp("pg2") / "run"
    torch.set_num_threads(1)
    result = train_generator(tiny(), demo_root, out=out, progress=False, data=tiny_data)
    return result


# ---------------------------------------------------------------- presets


def test_presets_ship_and_validate():
    assert {"cpu-small", "paper-128x64", "fashion-256x256"} <= set(preset_names())
    paper = load_preset("paper-128x64")
    assert paper.model.hidden == 128 and paper.model.z_dim == 64 and paper.model.blocks == 5
    assert paper.train.batch_size == 16 and paper.train.lr_g == 2e-5 and tuple(paper.train.betas) == (0.5, 0.999)
    assert (paper.train.stage1_steps, paper.train.stage2_steps) == (22000, 14000) and paper.data.flip
    assert load_preset("fashion-256x256").model.blocks == 6


@pytest.mark.parametrize(
    "override, message",
    [
        ({"model.hidden": "wide"}, "model.hidden: expected int"),
        ({"model.colour": 3}, "unknown key"),
        ({"model.image_size": [100, 64]}, "divisible by 2^(blocks-1)"),
        ({"pose.map_mode": "stars"}, "pose.map_mode"),
        ({"training.steps": 3}, "unknown section"),
    ],
)
def test_bad_presets_are_rejected_with_the_key(override, message):
    with pytest.raises(ConfigError) as err:
        load_preset("cpu-small", override)
    assert message in str(err.value)


def test_unknown_preset_and_preset_file(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset"):
        load_preset("no-such-preset")
    path = tmp_path / "mine.toml"
    path.write_text("[model]\nimage_size = [64, 32]\nblocks = 4\nhidden = 4\n")
    cfg = load_preset(path)
    assert cfg.name == "mine" and cfg.model.image_size == (64, 32) and cfg.model.z_dim == 64
    assert parse_override("train.stage1_steps=7") == ("train.stage1_steps", 7)
    assert parse_override("pose.map_mode=gaussian") == ("pose.map_mode", "gaussian")


# ---------------------------------------------------------------- data


def test_flip_augmentation_flips_images_and_poses(tiny_data):
    cfg = tiny()
    ds = PairDataset(tiny_data.cache, tiny_data.pairs)
    plain, flipped = ds[(0, False)], ds[(0, True)]
    assert torch.equal(flipped["condition"], plain["condition"].flip(-1))
    assert torch.equal(flipped["target"], plain["target"].flip(-1))
    # Disk maps of flip_pose equal the mirrored maps with left/right joints swapped.
    assert torch.equal(flipped["target_maps"], plain["target_maps"][list(FLIP_ORDER)].flip(-1))
    row = tiny_data.pairs[0][1]
    name = tiny_data.cache.names[row]
    from augreid.data.sources import resolve_source

    source = resolve_source(tiny_data.root)
    pose = scale_pose(source.train_poses()[name], (128, 64), cfg.model.image_size)
    expected = pose_maps(flip_pose(pose, 16), (32, 16), radius=1.5)
    assert np.array_equal(flipped["target_maps"].numpy(), expected)
    assert flipped["target_mask"].sum() > 0


def test_step_sampler_is_a_function_of_the_step_and_splits_ranks():
    full = StepBatchSampler(10, 4, 0, 8, seed=3, flip=True)
    batches = list(full)
    assert batches == list(StepBatchSampler(10, 4, 0, 8, seed=3, flip=True))
    assert list(StepBatchSampler(10, 4, 5, 8, seed=3, flip=True)) == batches[5:]
    assert {i for b in batches[:2] for i, _ in b} | {i for i, _ in batches[2][:2]} == set(
        range(10)
    )  # epoch 0 covers all
    for step in (0, 3, 7):
        ranks = [StepBatchSampler(10, 4, 0, 8, seed=3, flip=True, rank=r, world=2).batch(step) for r in (0, 1)]
        assert ranks[0] + ranks[1] == batches[step]
    assert any(f for b in batches for _, f in b) and not all(f for b in batches for _, f in b)


# ---------------------------------------------------------------- training


def test_overfitting_a_handful_of_pairs_cuts_the_masked_l1(tmp_path, demo_root):
    cfg = tiny(
        **{
            "data.max_pairs": 4,
            "data.flip": False,
            "train.batch_size": 4,
            "train.lr_g": 2e-3,
            "train.stage1_steps": 300,
            "train.stage2_steps": 0,
            "train.joint_steps": 0,
            "log.checkpoint_every": 1000,
            "log.image_every": 1000,
        }
    )
    result = train_generator(cfg, demo_root, out=tmp_path / "overfit", progress=False)
    losses = [h["stage1/pose_mask_l1"] for h in result.history]
    assert len(losses) == 300 and result.finished
    first, last = losses[0], float(np.mean(losses[-5:]))
    assert last < first / 6, (
        first,
        last,
    )  # about 10x here; every batch is the same 4 pairs, so this is the training loss


def test_checkpoint_round_trip(tiny_run, tiny_data, demo_root):
    assert tiny_run.finished and tiny_run.step == 10
    gen = load_generator(tiny_run.run_dir)
    assert gen.checkpoint_path == tiny_run.checkpoint and gen.checkpoint_path.name == "step_00000010.safetensors"
    from augreid.io import sha256_file

    assert gen.checkpoint_hash == sha256_file(gen.checkpoint_path)
    c = gen.config
    assert c["image_size"] == [32, 16] and c["pose_map_mode"] == "disk" and c["pose_radius"] == 1.5
    assert c["dataset_fingerprint"] == tiny_data.fingerprint and c["preset"] == "cpu-small"
    assert c["step"] == 10 and c["has_g2"] is True and "revision" in c["git"]
    assert not gen.training
    # Weights equal the file; outputs are in [-1, 1] and equal G1 + G2 of the loaded modules.
    tensors = load_file(str(gen.checkpoint_path))
    assert all(torch.equal(tensors[f"g1.{k}"], v) for k, v in gen.g1.state_dict().items())
    cond = torch.rand(2, 3, 32, 16) * 2 - 1
    pose = np.array([[4 + i, 8] for i in range(18)], dtype=np.int32)
    maps = torch.from_numpy(np.stack([gen.render_pose(pose)] * 2))
    assert np.array_equal(gen.render_pose(pose), pose_maps(pose, (32, 16), radius=1.5))
    big = pose * 4  # the same pose in a 128x64 image, scaled as training scales it
    assert np.array_equal(
        gen.render_pose(big, source_size=(128, 64)),
        pose_maps(scale_pose(big, (128, 64), (32, 16)), (32, 16), radius=1.5),
    )
    out = gen.generate(cond, maps)
    assert out.shape == (2, 3, 32, 16) and out.min() >= -1 and out.max() <= 1 and not out.requires_grad
    with torch.no_grad():
        coarse = gen.g1(cond, maps)
        assert torch.allclose(out, (coarse + gen.g2(coarse, cond)).clamp(-1, 1))
    # The G1-only checkpoint at the stage boundary is kept and loads without G2.
    g1_only = load_generator(tiny_run.run_dir / "checkpoints" / "step_00000004.safetensors")
    assert g1_only.g2 is None and g1_only.config["has_g2"] is False
    assert g1_only.generate(cond, maps).shape == (2, 3, 32, 16)


def test_a_lone_safetensors_file_carries_its_config(tiny_run, tmp_path):
    lone = tmp_path / "model.safetensors"
    lone.write_bytes(tiny_run.checkpoint.read_bytes())
    gen = load_generator(lone)
    assert gen.config["step"] == 10 and gen.image_size == (32, 16)
    with pytest.raises(ConfigError, match="does not exist"):
        load_generator(tmp_path / "missing.safetensors")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no PG2 checkpoint"):
        load_generator(tmp_path / "empty")


def test_find_latest_checkpoint(tiny_run, tiny_data, tmp_path):
    root = tiny_run.run_dir.parent
    assert find_latest_checkpoint(tiny_data.fingerprint, root) == tiny_run.checkpoint
    assert find_latest_checkpoint("0" * 16, root) is None
    assert find_latest_checkpoint(tiny_data.fingerprint, tmp_path / "nothing") is None


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def test_exact_resume_matches_an_uninterrupted_run(tmp_path, tiny_data, demo_root):
    cfg = tiny()
    straight = train_generator(cfg, demo_root, out=tmp_path / "a", progress=False, data=tiny_data)
    first = train_generator(cfg, demo_root, out=tmp_path / "b", progress=False, data=tiny_data, stop_at=6)
    assert first.step == 6 and not first.finished
    torch.manual_seed(12345)  # resuming must not depend on the caller's RNG state
    resumed = train_generator(cfg, demo_root, out=tmp_path / "b", progress=False, data=tiny_data)
    assert resumed.finished and resumed.history[0]["step"] == 7
    a, b = _weights(straight.checkpoint), _weights(resumed.checkpoint)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sa = torch.load(straight.checkpoint.with_suffix(".state.pt"), weights_only=False)
    sb = torch.load(resumed.checkpoint.with_suffix(".state.pt"), weights_only=False)
    assert all(torch.equal(sa["disc"][k], sb["disc"][k]) for k in sa["disc"])

    def losses_only(history):
        return [{k: v for k, v in h.items() if k != "it_per_s"} for h in history]

    assert losses_only(h for h in straight.history if h["step"] > 6) == losses_only(resumed.history)


def test_mixed_precision_and_channels_last_code_paths(tmp_path, tiny_data):
    """The CUDA-only options, exercised on CPU (bfloat16 autocast works there too)."""
    from generators.pg2.train import DistInfo, Trainer

    trainer = Trainer(tiny(), tiny_data, tmp_path / "amp", torch.device("cpu"), DistInfo(), progress=False)
    trainer.amp = trainer.channels_last = True
    trainer.net.to(memory_format=torch.channels_last)
    trainer.disc.to(memory_format=torch.channels_last)
    before = {k: v.clone() for k, v in trainer.net.state_dict().items()}
    assert trainer.fit() is True
    assert trainer.step == 10 and all(torch.isfinite(torch.tensor(list(h.values()))).all() for h in trainer.history)
    after = trainer.net.state_dict()
    assert all(v.dtype == torch.float32 for v in after.values())  # autocast keeps float32 master weights
    assert not torch.equal(before["g1.out.weight"], after["g1.out.weight"])
    assert not torch.equal(before["g2.out.weight"], after["g2.out.weight"])


def test_resume_refuses_a_different_model(tmp_path, tiny_data, demo_root):
    train_generator(tiny(), demo_root, out=tmp_path / "r", progress=False, data=tiny_data, stop_at=2)
    with pytest.raises(ConfigError, match="model.hidden"):
        train_generator(tiny(**{"model.hidden": 6}), demo_root, out=tmp_path / "r", progress=False, data=tiny_data)
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        train_generator(tiny(), demo_root, out=tmp_path / "r", progress=False, data=tiny_data, resume=False)


def test_nan_loss_stops_with_a_clear_message_and_keeps_a_good_checkpoint(tmp_path, tiny_data, demo_root, monkeypatch):
    from generators.pg2 import losses

    real = losses.pose_mask_l1
    calls = {"n": 0}

    def poisoned(*args):
        calls["n"] += 1
        value = real(*args)
        return value * float("nan") if calls["n"] == 3 else value

    monkeypatch.setattr(losses, "pose_mask_l1", poisoned)
    with pytest.raises(TrainingDiverged, match="non-finite loss at step 2") as err:
        train_generator(tiny(), demo_root, out=tmp_path / "nan", progress=False, data=tiny_data)
    assert "last good checkpoint" in str(err.value) and "step_00000002.safetensors" in str(err.value)
    gen = load_generator(tmp_path / "nan")
    assert gen.config["step"] == 2 and all(torch.isfinite(p).all() for p in gen.parameters())


def test_tensorboard_and_samples_are_written(tiny_run):
    run = tiny_run.run_dir
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    samples = sorted((run / "samples").glob("*.png"))
    assert [p.name for p in samples] == ["step_00000005.png", "step_00000010.png"]
    info = json.loads((run / "run.json").read_text())
    assert info["parameters"]["g1"] == expected_g1_parameters(tiny().model)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    tags = events.Tags()
    assert {"stage1/pose_mask_l1", "stage2/d_loss", "stage2/g_adversarial", "lr/generator"} <= set(tags["scalars"])
    assert tags["images"]


# ---------------------------------------------------------------- eval-gen


def test_scores_of_identical_and_different_images():
    from generators.common.quality import score_image

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 16, 3), dtype=np.uint8)
    mask = np.zeros((32, 16), np.float32)
    mask[8:24, 4:12] = 1
    same = score_image(image, image, mask)
    assert same == {"ssim": pytest.approx(1.0), "mask_ssim": pytest.approx(1.0), "psnr": 100.0, "masked_l1": 0.0}
    other = image.copy()
    other[0:4] = 0  # outside the mask: only the unmasked scores change
    moved = score_image(image, other, mask)
    assert (
        moved["ssim"] < 1
        and moved["psnr"] < 100
        and moved["mask_ssim"] == pytest.approx(1.0)
        and moved["masked_l1"] == 0.0
    )


def test_eval_gen_scores_held_out_pairs(tiny_run, demo_root, tmp_path):
    from augreid.data import load_market
    from generators.common.quality import evaluate_generator

    report = evaluate_generator(
        tiny_run.checkpoint, demo_root, out=tmp_path / "eval", max_pairs=20, batch_size=8, progress=False
    )
    assert report["pairs"] == 20
    assert list(report["methods"]) == ["G1", "refined", "copy condition", "mean training image"]
    test_names = {r.name for split in (load_market(demo_root).query, load_market(demo_root).gallery) for r in split}
    train_names = {r.name for r in load_market(demo_root).train}
    for row in report["per_pair"]:
        assert row["condition"] in test_names and row["target"] in test_names
        assert row["condition"] not in train_names
        for method in report["methods"]:
            assert 0 <= row[method]["masked_l1"] <= 1 and -1 <= row[method]["ssim"] <= 1
    table = (tmp_path / "eval" / "metrics.md").read_text()
    assert table.count("\n| ") == 5 and "mask-SSIM" in table
    from PIL import Image

    with Image.open(tmp_path / "eval" / "contact_sheet.png") as sheet:
        assert sheet.height > 12 * 32
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["checkpoint_sha256"] == load_generator(tiny_run.checkpoint).checkpoint_hash
    assert math.isfinite(saved["methods"]["G1"]["ssim"]["mean"])


def test_eval_gen_reads_a_pairs_file(tiny_run, demo_root, tmp_path):
    from augreid.data import load_market, write_pairs_csv
    from augreid.errors import DatasetError
    from generators.common.quality import evaluate_generator

    ds = load_market(demo_root)
    bad = tmp_path / "bad.csv"
    write_pairs_csv(bad, [(ds.train[0].name, ds.train[1].name)])
    with pytest.raises(DatasetError, match="not query/gallery images"):
        evaluate_generator(tiny_run.checkpoint, demo_root, out=tmp_path / "e", pairs_csv=bad, progress=False)


# ---------------------------------------------------------------- CLI


def test_cli_train_gen_then_eval_gen(tmp_path, demo_root):
    from typer.testing import CliRunner

    from augreid.cli import app

    preset = tmp_path / "tiny.toml"
    preset.write_text(
        "[model]\nimage_size = [32, 16]\nblocks = 3\nhidden = 4\ng2_hidden = 4\nd_hidden = 4\nd_layers = 2\n"
        "[pose]\nradius = 1.5\nmask_radius = 1.5\n[data]\nmax_pairs = 8\n"
        "[train]\nbatch_size = 2\nstage1_steps = 2\nstage2_steps = 1\n[log]\nlog_every = 1\n"
    )
    runner = CliRunner()
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "train-gen",
            "--data",
            str(demo_root),
            "--preset",
            str(preset),
            "--out",
            str(out),
            "--set",
            "train.stage2_steps=2",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    gen = load_generator(out)
    assert gen.config["step"] == 4 and gen.config["preset"] == "tiny"
    result = runner.invoke(
        app,
        ["eval-gen", str(out), "--data", str(demo_root), "--out", str(tmp_path / "ev"), "--max-pairs", "6", "--quiet"],
    )
    assert result.exit_code == 0, result.output
    assert "copy condition" in result.output and (tmp_path / "ev" / "metrics.json").is_file()
    bad = runner.invoke(app, ["train-gen", "--data", str(demo_root), "--preset", "nope", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "unknown preset" in bad.output
