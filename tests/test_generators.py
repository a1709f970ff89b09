"""Generators as plug-ins: the registry, checkpoint dispatch, and callers that speak only the interface."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from synth_double import NAME, PasteGenerator, write_checkpoint

from augreid.data.sources import resolve_source
from augreid.errors import ConfigError
from generators import base

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def restored_registry():
    """Whatever a test registers is gone afterwards: the registry is global to the session."""
    saved = dict(base._REGISTRY)
    yield
    base._REGISTRY.clear()
    base._REGISTRY.update(saved)


def test_listing_generators_imports_no_plugin():
    code = (
        "import json, sys; from generators import base; names = base.generator_names(); "
        "before = sorted(m for m in sys.modules if m.startswith('generators.') and m != 'generators.base'); "
        "base.generator_plugin('pg2'); "
        "after = sorted(m for m in sys.modules if m.startswith('generators.') and m != 'generators.base'); "
        "print(json.dumps([names, before, after]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    names, before, after = json.loads(out.stdout)
    assert {"pg2", "warp"} <= set(names)
    assert before == []  # names only: no plug-in module (nor its dependencies) imported
    assert "generators.pg2.plugin" in after and not [m for m in after if m.startswith("generators.warp")]


def test_registry_names_what_is_known_and_reports_what_cannot_be_imported(restored_registry):
    assert {"pg2", NAME} <= set(base.generator_names())
    plugin = base.generator_plugin("pg2")
    assert plugin.name == "pg2" and plugin.default_preset == "cpu-small" and "cpu-small-hd" in plugin.presets()
    with pytest.raises(ConfigError, match="unknown generator 'nope'.*pg2"):
        base.generator_plugin("nope")
    base.register_generator("broken", "generators.does_not_exist:PLUGIN")
    assert "broken" in base.generator_names()
    with pytest.raises(ConfigError, match="cannot be imported"):
        base.generator_plugin("broken")


def _tiny_pg2(demo_root, out):
    from generators.pg2 import load_preset
    from generators.pg2.train import train_generator

    cfg = load_preset(
        "cpu-small",
        {
            "model.image_size": [32, 16],
            "model.blocks": 3,
            "model.hidden": 4,
            "model.d_layers": 2,
            "data.max_pairs": 4,
            "train.batch_size": 2,
            "train.stage1_steps": 1,
            "train.stage2_steps": 1,
        },
    )
    return train_generator(cfg, demo_root, out=out, progress=False)


def test_the_double_and_pg2_satisfy_the_protocol(tmp_path, demo_root):
    assert isinstance(PasteGenerator(), base.Generator)
    assert not isinstance(object(), base.Generator)

    class NoOutputs:  # everything but generate_outputs
        name, checkpoint_path, checkpoint_hash, image_size, output_names = "x", "x", "x", (32, 16), ("x",)

        def provenance(self): ...

        def render_pose(self, pose, source_size=None): ...

        def generate(self, condition, target_maps, condition_poses=None): ...

    assert not isinstance(NoOutputs(), base.Generator)
    gen = base.load_generator(write_checkpoint(tmp_path / "step_00000001.json", grey=0.5))
    assert isinstance(gen, PasteGenerator) and gen.checkpoint_hash == "test-paste-0.5"
    assert base.load_generator(tmp_path).checkpoint_hash == "test-paste-0.5"  # a run folder: its latest JSON
    pg2 = base.load_generator(_tiny_pg2(demo_root, tmp_path / "pg2").run_dir)
    assert isinstance(pg2, base.Generator) and not isinstance(pg2, PasteGenerator)
    # The protocol's promise: generate() returns the last named output.
    torch.manual_seed(0)
    cond = torch.rand(2, 3, 32, 16) * 2 - 1
    maps = torch.from_numpy(np.stack([pg2.render_pose(np.full((18, 2), [16, 8]))] * 2)).float()
    outputs = pg2.generate_outputs(cond, maps)
    assert tuple(outputs) == pg2.output_names == ("G1", "refined")
    assert all(o.shape == cond.shape for o in outputs.values())
    assert torch.equal(outputs["refined"], pg2.generate(cond, maps))
    assert not torch.equal(outputs["G1"], outputs["refined"])


def test_dispatch_on_the_json_name_and_legacy_checkpoints(tmp_path, demo_root):
    run = _tiny_pg2(demo_root, tmp_path / "pg2")
    meta_path = run.checkpoint.with_suffix(".json")
    assert json.loads(meta_path.read_text())["generator"] == "pg2"
    assert base.checkpoint_generator_name(run.run_dir) == "pg2"
    gen = base.load_generator(run.run_dir)
    assert gen.output_names == ("G1", "refined") and gen.provenance()["step"] == 2
    assert base.load_generator(meta_path).checkpoint_path == run.checkpoint  # the JSON names the checkpoint too
    # A checkpoint written before the key existed is PG2's.
    meta = json.loads(meta_path.read_text())
    del meta["generator"]
    meta_path.write_text(json.dumps(meta))
    assert base.checkpoint_generator_name(run.checkpoint) == "pg2"
    assert base.load_generator(run.checkpoint).name == "pg2"
    # find_latest_checkpoint sees every generator's checkpoints of a dataset.
    fp = meta["dataset_fingerprint"]
    assert base.find_latest_checkpoint(fp, tmp_path) == run.checkpoint
    double = write_checkpoint(tmp_path / "paste" / "step_00000009.json", shape=(32, 16), fingerprint=fp)
    import os

    os.utime(double, (meta_path.stat().st_mtime + 10,) * 2)
    assert base.find_latest_checkpoint(fp, tmp_path) == double
    assert base.find_latest_checkpoint("0" * 16, tmp_path) is None
    bad = tmp_path / "bad" / "step_00000001.json"
    bad.parent.mkdir()
    bad.write_text(json.dumps({"generator": "nope"}))
    with pytest.raises(ConfigError, match="unknown generator 'nope'"):
        base.load_generator(bad)


def test_synth_runs_a_registered_generator_from_its_checkpoint(tmp_path, demo_root):
    from augreid.synth import SynthConfig, synthesize

    checkpoint = write_checkpoint(tmp_path / "gen" / "step_00000001.json")
    config = SynthConfig(num_poses=2, max_ids=2, batch_size=4, num_workers=0, min_quality={})
    result = synthesize(
        tmp_path / "out", config, data=demo_root, generator=checkpoint, progress=False, echo=lambda _m: None
    )
    generator = result.summary["generator"]
    assert generator["name"] == NAME and generator["hash"] == "test-paste-0.2"
    assert generator["outputs"] == ["disks", "paste"] and "has_g2" not in json.dumps(generator)
    assert result.counts["kept"] == 4


def test_eval_gen_scores_every_named_output(tmp_path, demo_root):
    from augreid.evaluation.generator_eval import evaluate_generator

    gen = PasteGenerator()
    report = evaluate_generator(
        gen, demo_root, out=tmp_path / "ev", max_pairs=6, batch_size=4, progress=False, realism=False
    )
    # Each pair's condition keypoints (the test keypoint file's) go to the generator with its image.
    test_poses = resolve_source(demo_root).test_poses()
    handed = np.concatenate([p for p in gen.condition_poses if p is not None])
    np.testing.assert_array_equal(
        handed[: len(report["per_pair"])], [test_poses[r["condition"]] for r in report["per_pair"]]
    )
    assert list(report["methods"]) == ["disks", "paste", "copy condition", "mean training image"]
    assert report["generator"]["name"] == NAME and "realism" not in report
    # The paste keeps the condition's pixels inside the pose: closer to the target than flat disks.
    assert report["methods"]["paste"]["masked_l1"]["mean"] < report["methods"]["disks"]["masked_l1"]["mean"]
    text = (tmp_path / "ev" / "metrics.md").read_text()
    pixel_table = text.split("\n\n")[1]  # after the header line: SSIM / mask-SSIM / PSNR / masked L1
    assert text.startswith(f"{NAME} quality") and pixel_table.count("\n| ") == 4  # 4 methods under the header row
    assert "| real target images |" in text  # then pose fidelity, with the real images for reference


def test_cli_train_gen_names_the_generator(tmp_path, demo_root):
    from typer.testing import CliRunner

    from augreid.cli import app

    runner = CliRunner()
    bad = runner.invoke(
        app, ["train-gen", "--generator", "nope", "--data", str(demo_root), "--out", str(tmp_path / "x")]
    )
    assert bad.exit_code == 2 and "unknown generator 'nope'" in bad.output
    untrainable = runner.invoke(
        app, ["train-gen", "--generator", NAME, "--data", str(demo_root), "--out", str(tmp_path / "y")]
    )
    assert untrainable.exit_code == 2 and "cannot be trained" in untrainable.output
    args = [
        "train-gen",
        "--generator",
        "pg2",
        "--preset",
        "cpu-small-hd",
        "--data",
        str(demo_root),
        "--out",
        str(tmp_path / "hd"),
        "--quiet",
        "--set",
        "model.image_size=[32,16]",
        "--set",
        "model.blocks=3",
        "--set",
        "model.hidden=4",
        "--set",
        "model.d_layers=2",
        "--set",
        "data.max_pairs=4",
        "--set",
        "train.batch_size=2",
        "--set",
        "train.stage1_steps=1",
        "--set",
        "train.stage2_steps=1",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "finished at step 2/2" in result.output
    assert base.load_generator(tmp_path / "hd").provenance()["details"]["stage2"] == "multiscale"


def test_recipe_names_the_generator(tmp_path):
    from augreid.pipeline.recipe import validate

    assert validate({"name": "r"}).section("generator")["name"] == "pg2"
    with pytest.raises(ConfigError, match="generator.name: 'nope'"):
        validate({"name": "r", "generator": {"name": "nope"}})
