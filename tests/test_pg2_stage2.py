"""The pix2pixHD-style stage II of PG2: multi-scale discriminators, GAN losses, feature matching."""

from __future__ import annotations

import pytest
import torch

from augreid.errors import ConfigError
from generators.pg2 import load_preset
from generators.pg2 import multiscale as ms
from generators.pg2.config import ModelConfig
from generators.pg2.losses import discriminator_loss as pg2_d_loss
from generators.pg2.losses import generator_adversarial as pg2_g_loss
from generators.pg2.train import prepare_data, train_generator
from test_pg2 import TINY

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# The tiny PG2 of tests/test_pg2.py with a short schedule and no joint stage.
TINY_HD = {
    **TINY,
    "train.stage1_steps": 3,
    "train.stage2_steps": 3,
    "train.joint_steps": 0,
    "log.image_every": 100,
    "log.checkpoint_every": 100,
}
TINY_HD.pop("log.keep_last")


def tiny_hd(**changes):
    return load_preset("cpu-small-hd", {**TINY_HD, **changes})


def test_hd_presets_ship_and_validate():
    for name in ("cpu-small-hd", "paper-128x64-hd"):
        cfg = load_preset(name)
        assert cfg.model.d_type == "multiscale" and cfg.model.d_scales == 3
        assert cfg.train.gan_loss == "lsgan" and cfg.train.fm_weight == 10.0 and cfg.train.l1_weight == 10.0
    base, hd = load_preset("cpu-small"), load_preset("cpu-small-hd")
    assert base.model.hidden == hd.model.hidden and base.train.stage2_steps == hd.train.stage2_steps
    with pytest.raises(ConfigError, match="fm_weight"):
        load_preset("cpu-small", {"train.fm_weight": 10.0})  # DCGAN D has no layers to match
    with pytest.raises(ConfigError, match="gan_loss"):
        load_preset("cpu-small-hd", {"train.gan_loss": "wasserstein"})


def test_multiscale_discriminator_shapes_and_scales():
    cfg = ModelConfig(image_size=(128, 64), d_hidden=8, d_layers=3, d_norm="instance", d_type="multiscale", d_scales=3)
    disc = ms.build_discriminator(cfg)
    assert isinstance(disc, ms.MultiScaleDiscriminator) and len(disc.scales) == 3
    cond, image = torch.randn(2, 3, 128, 64), torch.randn(2, 3, 128, 64)
    out = disc(cond, image)
    assert len(out) == 3 and all(len(scale) == cfg.d_layers + 2 for scale in out)
    logits = [scale[-1] for scale in out]
    assert all(t.shape[:2] == (2, 1) for t in logits)
    heights = [t.shape[2] for t in logits]
    assert heights[0] > heights[1] > heights[2]  # each scale sees a half-size pair
    channels = [t.shape[1] for t in out[0][:-1]]
    assert channels == [8, 16, 32, 64]
    # The three discriminators have their own weights.
    w = [d.blocks[0][0].weight for d in disc.scales]
    assert not torch.equal(w[0], w[1]) and not torch.equal(w[1], w[2])


def test_feature_matching_is_zero_for_identical_pairs_and_grows_with_the_difference():
    cfg = ModelConfig(image_size=(32, 16), d_hidden=4, d_layers=2, d_norm="instance", d_type="multiscale", d_scales=2)
    disc = ms.build_discriminator(cfg)
    cond, real = torch.randn(3, 3, 32, 16), torch.randn(3, 3, 32, 16)
    real_out = ms.as_scales(disc(cond, real))
    assert ms.feature_matching(ms.as_scales(disc(cond, real.clone())), real_out).item() == 0.0
    near = ms.feature_matching(ms.as_scales(disc(cond, real + 0.01 * torch.randn_like(real))), real_out).item()
    far = ms.feature_matching(ms.as_scales(disc(cond, torch.randn_like(real))), real_out).item()
    assert 0 < near < far
    # Gradient reaches the fake image but never the real branch.
    fake = real.clone().add_(0.5).requires_grad_(True)
    target = real.clone().requires_grad_(True)
    ms.feature_matching(ms.as_scales(disc(cond, fake)), ms.as_scales(disc(cond, target))).backward()
    assert fake.grad.abs().sum() > 0 and target.grad is None


def test_gan_losses():
    real, fake = [[torch.full((2, 1, 3, 3), 1.0)]], [[torch.full((2, 1, 3, 3), -1.0)]]
    # A perfect discriminator: LSGAN and hinge D losses are zero, the G losses are not.
    assert ms.discriminator_loss(real, [[torch.zeros(2, 1, 3, 3)]], "lsgan").item() == 0.0
    assert ms.discriminator_loss(real, fake, "hinge").item() == 0.0
    assert ms.generator_adversarial(fake, "lsgan").item() == pytest.approx(4.0)
    assert ms.generator_adversarial(fake, "hinge").item() == pytest.approx(1.0)
    # bce on the DCGAN logits is exactly PG2's original loss.
    r, f = torch.randn(5), torch.randn(5)
    assert torch.equal(ms.discriminator_loss(*ms.split_real_fake(torch.cat([r, f])), "bce"), pg2_d_loss(r, f))
    assert torch.equal(ms.generator_adversarial(ms.as_scales(f), "bce"), pg2_g_loss(f))
    # Multi-scale: the mean over scales.
    two = [[torch.zeros(1, 1, 2, 2)], [torch.ones(1, 1, 2, 2)]]
    assert ms.generator_adversarial(two, "lsgan").item() == pytest.approx(0.5)


@pytest.mark.parametrize("gan_loss", ["lsgan", "hinge"])
def test_hd_stage2_trains_a_few_steps(tmp_path, demo_root, gan_loss):
    cfg = tiny_hd(**{"train.gan_loss": gan_loss})
    result = train_generator(cfg, demo_root, out=tmp_path / gan_loss, progress=False)
    assert result.finished and result.step == 6
    stage2 = [h for h in result.history if "stage2/d_loss" in h]
    assert len(stage2) == 3 and all(h["stage2/g_feature_matching"] > 0 for h in stage2)
    assert all(torch.isfinite(torch.tensor(list(h.values()))).all() for h in result.history)
    state = torch.load(result.checkpoint.with_suffix(".state.pt"), weights_only=False)
    assert any(k.startswith("scales.2.") for k in state["disc"])  # the three discriminators were saved
    from generators.base import load_generator

    gen = load_generator(result.run_dir)
    assert gen.name == "pg2" and gen.output_names == ("G1", "refined")
    assert gen.provenance()["details"]["stage2"] == "multiscale"


def test_two_stage_twos_share_one_g1(tmp_path, demo_root):
    """A G1-only run resumes with either stage II: same G1, same batches, different discriminators."""
    import shutil

    from safetensors.torch import load_file

    data = prepare_data(tiny_hd(), demo_root, progress=False)
    g1_only = train_generator(
        load_preset("cpu-small", {**TINY_HD, "train.stage2_steps": 0}),
        demo_root,
        out=tmp_path / "g1",
        progress=False,
        data=data,
    )
    runs = {}
    for name, preset in (("dcgan", "cpu-small"), ("hd", "cpu-small-hd")):
        shutil.copytree(g1_only.run_dir, tmp_path / name)
        runs[name] = train_generator(
            load_preset(preset, TINY_HD), demo_root, out=tmp_path / name, progress=False, data=data
        )
        assert runs[name].finished and runs[name].history[0]["step"] == 4
    a, b = (load_file(str(runs[k].checkpoint)) for k in ("dcgan", "hd"))
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("g1."))  # G1 frozen in stage II, from one run
    assert not all(torch.equal(a[k], b[k]) for k in a if k.startswith("g2."))
    # Once stage II has trained, its settings are part of the run again.
    with pytest.raises(ConfigError, match="d_type"):
        train_generator(
            load_preset("cpu-small", {**TINY_HD, "train.stage2_steps": 5}),
            demo_root,
            out=tmp_path / "hd",
            progress=False,
            data=data,
        )


def test_hd_stage2_under_bfloat16_autocast_and_channels_last(tmp_path, demo_root):
    """The CUDA-only options with the multi-scale discriminator, exercised on CPU."""
    from generators.pg2.train import DistInfo, Trainer

    cfg = tiny_hd()
    trainer = Trainer(
        cfg,
        prepare_data(cfg, demo_root, progress=False),
        tmp_path / "amp",
        torch.device("cpu"),
        DistInfo(),
        progress=False,
    )
    trainer.amp = trainer.channels_last = True
    trainer.net.to(memory_format=torch.channels_last)
    trainer.disc.to(memory_format=torch.channels_last)
    before = {k: v.clone() for k, v in trainer.disc.state_dict().items()}
    assert trainer.fit() is True
    fm = [h["stage2/g_feature_matching"] for h in trainer.history if "stage2/g_feature_matching" in h]
    assert len(fm) == 3 and all(torch.isfinite(torch.tensor(fm)))
    after = trainer.disc.state_dict()
    assert all(v.dtype == torch.float32 for v in after.values())
    assert all(not torch.equal(before[k], after[k]) for k in after if k.endswith("blocks.0.0.weight"))
