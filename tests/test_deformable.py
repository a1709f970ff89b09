"""The ``deformable`` generator (Deformable GAN): part maps, deformable skips, nearest-neighbour loss,
exact resume, and the plug-in end to end (load_generator, synth, eval-gen)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from augreid.data.keypoints import KP, MISSING, NUM_KEYPOINTS
from augreid.errors import ConfigError
from generators.base import Generator, generator_plugin, load_generator, to_tensor_image
from generators.common.features import NearestNeighbourLoss, nearest_neighbour_distance
from generators.deformable.config import load_preset
from generators.deformable.geometry import (
    PART_NAMES,
    least_squares_affine,
    normalised_theta,
    part_affines,
    part_geometry,
    part_masks,
)
from generators.deformable.model import DeformableNet, deform
from generators.deformable.plugin import prepare_data, train_generator

pytestmark = pytest.mark.usefixtures("one_torch_thread")

H, W = 128, 64


def person() -> np.ndarray:
    """A standing person, float (y, x), every joint but the ears."""
    pose = np.full((NUM_KEYPOINTS, 2), float(MISSING))
    joints = {
        "nose": (14, 32), "Reye": (12, 30), "Leye": (12, 34), "neck": (26, 32),
        "Rsho": (28, 22), "Lsho": (28, 42), "Relb": (46, 20), "Lelb": (46, 44), "Rwri": (64, 20), "Lwri": (64, 44),
        "Rhip": (66, 26), "Lhip": (66, 38), "Rkne": (90, 26), "Lkne": (90, 38), "Rank": (114, 26), "Lank": (114, 38),
    }  # fmt: skip
    for name, yx in joints.items():
        pose[KP[name]] = yx
    return pose


def moved(pose: np.ndarray, angle: float, scale: float, shift: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """``pose`` rotated by ``angle`` about (32, 64) (x, y), scaled, shifted; and that map as a 2x3 on (x, y)."""
    c, s = np.cos(angle), np.sin(angle)
    linear = scale * np.array([[c, -s], [s, c]])
    centre = np.array([32.0, 64.0])
    m = np.hstack([linear, (centre + np.array(shift) - linear @ centre)[:, None]])
    out = pose.copy()
    seen = pose[:, 0] >= 0
    xy = pose[seen][:, ::-1]
    out[seen] = (xy @ m[:, :2].T + m[:, 2])[:, ::-1]
    return out, m


def inverse(m: np.ndarray) -> np.ndarray:
    full = np.linalg.inv(np.vstack([m, [0, 0, 1]]))
    return full[:2]


# ---------------------------------------------------------------- part maps


def test_a_pose_mapped_onto_itself_gives_the_identity_for_every_part() -> None:
    maps = part_affines(person(), person())
    assert maps.valid.all() and not maps.mirrored.any() and len(PART_NAMES) == 10
    np.testing.assert_allclose(
        maps.to_source, np.repeat(np.hstack([np.eye(2), np.zeros((2, 1))])[None], 10, 0), atol=1e-9
    )


@pytest.mark.parametrize(
    "angle, scale, shift", [(0.0, 1.0, (5.0, -7.0)), (0.3, 1.0, (0.0, 0.0)), (-0.2, 0.8, (3.0, 2.0))]
)
def test_a_moved_pose_gives_that_map_for_every_part(angle, scale, shift) -> None:
    """Target = the source translated / rotated / scaled: every part's target -> source map is the inverse."""
    source = person()
    target, m = moved(source, angle, scale, shift)
    maps = part_affines(source, target)
    assert maps.valid.all()
    for i, name in enumerate(PART_NAMES):
        np.testing.assert_allclose(maps.to_source[i], inverse(m), atol=1e-6, err_msg=name)


def test_a_limb_missing_in_the_source_is_taken_from_its_mirror() -> None:
    source, target = person(), person()
    source[KP["Lelb"]] = source[KP["Lwri"]] = MISSING
    maps = part_affines(source, target)
    upper, lower = PART_NAMES.index("Lsho-Lelb"), PART_NAMES.index("Lelb-Lwri")
    assert maps.valid[[upper, lower]].all() and maps.mirrored[[upper, lower]].all()
    assert maps.mirrored.sum() == 2
    # The left forearm of the target is read from the right forearm of the source.
    xy = lambda p, j: p[KP[j]][::-1]  # noqa: E731
    m = maps.to_source[lower]
    np.testing.assert_allclose(m[:, :2] @ xy(target, "Lelb") + m[:, 2], xy(source, "Relb"), atol=1e-9)
    np.testing.assert_allclose(m[:, :2] @ xy(target, "Lwri") + m[:, 2], xy(source, "Rwri"), atol=1e-9)
    # Missing on both sides: no source for the part, no mask for it.
    source[KP["Relb"]] = MISSING
    maps = part_affines(source, target)
    assert not maps.valid[lower] and not maps.valid[PART_NAMES.index("Relb-Rwri")]
    assert part_masks(target, (H, W), valid=maps.valid)[lower].sum() == 0
    # Missing in the target: no part whatever the source has.
    target[KP["Rkne"]] = MISSING
    assert not part_affines(person(), target).valid[PART_NAMES.index("Rhip-Rkne")]


def test_nearly_collinear_torso_joints_fall_back_to_a_similarity() -> None:
    src = np.array([[22.0, 28.0], [32.0, 26.0], [42.0, 28.0]])  # shoulders and neck: almost a line
    dst = src + [3.0, 1.0]
    np.testing.assert_allclose(least_squares_affine(src, dst), [[1, 0, 3], [0, 1, 1]], atol=1e-9)


def test_masks_are_drawn_in_the_target_pose() -> None:
    target = person()
    masks = part_masks(target, (H, W))
    assert masks.shape == (10, H, W) and set(np.unique(masks)) <= {0.0, 1.0}
    forearm = masks[PART_NAMES.index("Lelb-Lwri")]
    assert forearm[55, 44] == 1 and forearm[55, 20] == 0  # on the left forearm, not the right one
    assert masks[PART_NAMES.index("torso")][45, 32] == 1 and masks[PART_NAMES.index("head")][12, 32] == 1


def test_normalised_theta_matches_pixel_coordinates() -> None:
    shift = np.array([[[1.0, 0.0, 4.0], [0.0, 1.0, -2.0]]])  # read 4 px to the right, 2 px up
    theta = torch.from_numpy(normalised_theta(shift, (H, W)))
    image = torch.zeros(1, 1, H, W)
    image[0, 0, 40, 30] = 1.0
    grid = torch.nn.functional.affine_grid(theta, [1, 1, H, W], align_corners=False)
    out = torch.nn.functional.grid_sample(image, grid, align_corners=False)
    assert tuple(np.argwhere(out[0, 0].numpy() > 0.99)[0]) == (42, 26)


# ---------------------------------------------------------------- deformable skips


def test_a_deformable_skip_puts_a_parts_features_where_the_target_pose_puts_it() -> None:
    """A feature map with a marker on the source's left forearm (held out sideways): after the skip, the marker
    is on the target's left forearm (hanging down), at full and at half resolution, and gone from where it was."""
    source, target = person(), person()
    source[KP["Lwri"]] = (46, 62)  # elbow (46, 44) -> wrist (46, 62); the target's hangs to (64, 44)
    theta, masks = (torch.from_numpy(a)[None] for a in part_geometry(source, target, (H, W)))
    for stride in (1, 2):
        features = torch.zeros(1, 2, H // stride, W // stride)
        features[0, 0, 46 // stride, 56 // stride] = 1.0  # 12 px along the source's left forearm
        features[0, 1, 40 // stride, 32 // stride] = 1.0  # mid-torso, which does not move
        out = deform(features, theta, masks)[0]
        arm = np.unravel_index(out[0].argmax().item(), out.shape[-2:])
        body = np.unravel_index(out[1].argmax().item(), out.shape[-2:])
        assert out[0].max() > 0.2 and abs(arm[0] * stride - 58) <= stride and abs(arm[1] * stride - 44) <= stride
        assert out[0, 46 // stride, 56 // stride] == 0
        assert (body[0], body[1]) == (40 // stride, 32 // stride) and out[1].max() == 1.0


def test_the_network_starts_near_the_warp_and_runs_without_it_when_built_so() -> None:
    cfg = load_preset("tiny").model
    torch.manual_seed(0)
    net = DeformableNet(cfg)
    b, h, w = 2, *cfg.image_size
    args = (torch.rand(b, 3, h, w) * 2 - 1, torch.zeros(b, 18, h, w), torch.zeros(b, 18, h, w))
    theta = torch.eye(2, 3).expand(b, 10, 2, 3).contiguous()
    masks = torch.ones(b, 10, h, w)
    warped = torch.rand(b, 3, h, w) * 2 - 1
    out = net(*args, theta, masks, warped)
    blend = torch.sigmoid(torch.tensor(cfg.blend_init))
    assert out.shape == (b, 3, h, w) and ((out - warped).abs() <= (1 - blend) * 2 + 1e-5).all()
    with pytest.raises(ValueError, match="needs the warp"):
        net(*args, theta, masks)
    plain = DeformableNet(load_preset("tiny", {"model.warp_input": False, "model.warp_blend": False}).model)
    assert plain(*args, theta, masks).abs().max() <= 1


# ---------------------------------------------------------------- nearest-neighbour loss


def _shifted(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``x`` moved by (dy, dx) pixels, the uncovered border filled with its edge values."""
    h, w = x.shape[-2:]
    ys = (torch.arange(h) - dy).clamp(0, h - 1)
    xs = (torch.arange(w) - dx).clamp(0, w - 1)
    return x[..., ys[:, None], xs[None, :]]


def test_nearest_neighbour_distance_forgives_a_shift_within_the_window_only() -> None:
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 5, 24, 16, generator=g)
    assert nearest_neighbour_distance(target, target, 3).abs().max() == 0
    for dy, dx in ((1, 0), (0, -1), (1, 1)):
        assert nearest_neighbour_distance(_shifted(target, dy, dx), target, 3).abs().max() == 0
    assert nearest_neighbour_distance(_shifted(target, 2, 0), target, 3).mean() > 0.05
    assert nearest_neighbour_distance(_shifted(target, 2, 0), target, 5).abs().max() == 0
    assert nearest_neighbour_distance(_shifted(target, 1, 0), target, 1).mean() > 0.05  # 1x1: plain L1
    with pytest.raises(ValueError, match="odd"):
        nearest_neighbour_distance(target, target, 2)


def test_nearest_neighbour_loss_on_pixels_is_zero_for_a_one_pixel_shift_and_positive_beyond() -> None:
    loss = NearestNeighbourLoss(stage_ends=(0,), size=3)
    g = torch.Generator().manual_seed(1)
    target = torch.rand(2, 3, 32, 16, generator=g) * 2 - 1
    mask = torch.ones(2, 1, 32, 16)
    assert loss(_shifted(target, 1, -1), target, mask).item() == 0.0
    assert loss(_shifted(target, 0, 3), target, mask).item() > 0.1
    pred = target.clone().requires_grad_(True)
    loss(pred + 0.1, target, mask).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    features = NearestNeighbourLoss(stage_ends=(2, 4))  # ImageNet MobileNetV2 features: same image, no cost
    assert features(target, target, mask).item() == pytest.approx(0.0, abs=1e-6)


# ---------------------------------------------------------------- training, resume, plug-in

TINY = {"data.max_pairs": 12}
# synth renders at the dataset's image size: the end-to-end run is tiny in width and steps only.
FULL_SIZE = {**TINY, "model.image_size": [128, 64], "pose.radius": 4, "pose.mask_radius": 4}


@pytest.fixture(scope="module")
def tiny_data(demo_root):
    return prepare_data(load_preset("tiny", TINY), demo_root, progress=False)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, demo_root):
    out = tmp_path_factory.mktemp("deformable") / "run"
    run = generator_plugin("deformable").train("tiny", FULL_SIZE, demo_root, out=out, progress=False)
    assert run.finished and run.step == 6 and run.total_steps == 6
    return run


def test_resume_is_exact(tmp_path, tiny_data, demo_root) -> None:
    cfg = load_preset("tiny", {**TINY, "train.gan_weight": 0.5})  # the discriminator's state resumes too
    straight = train_generator(cfg, demo_root, out=tmp_path / "a", progress=False, data=tiny_data)
    first = train_generator(cfg, demo_root, out=tmp_path / "b", progress=False, data=tiny_data, stop_at=3)
    assert first.step == 3 and not first.finished
    torch.manual_seed(12345)  # resuming must not depend on the caller's RNG state
    resumed = train_generator(cfg, demo_root, out=tmp_path / "b", progress=False, data=tiny_data)
    assert resumed.finished and resumed.history[0]["step"] == 4
    a, b = load_file(str(straight.checkpoint)), load_file(str(resumed.checkpoint))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sa = torch.load(straight.checkpoint.with_suffix(".state.pt"), weights_only=False)
    sb = torch.load(resumed.checkpoint.with_suffix(".state.pt"), weights_only=False)
    for key in ("g_training", "disc"):
        assert all(torch.equal(sa[key][k], sb[key][k]) for k in sa[key])
    strip = lambda hs: [{k: v for k, v in h.items() if k != "it_per_s"} for h in hs]  # noqa: E731
    assert strip(h for h in straight.history if h["step"] > 3) == strip(resumed.history)
    with pytest.raises(ConfigError, match="model.hidden"):
        train_generator(load_preset("tiny", {**TINY, "model.hidden": 3}), demo_root, out=tmp_path / "b", data=tiny_data)


def test_the_checkpoint_holds_the_average_and_writes_logs(tiny_run) -> None:
    meta = json.loads(tiny_run.checkpoint.with_suffix(".json").read_text())
    assert meta["generator"] == "deformable" and meta["weight_average"] and meta["step"] == 6
    state = torch.load(tiny_run.checkpoint.with_suffix(".state.pt"), weights_only=False)
    weights = load_file(str(tiny_run.checkpoint))
    assert state["g_average_updates"] == 6
    assert any(not torch.equal(weights[f"g.{k}"], v) for k, v in state["g_training"].items())
    run = tiny_run.run_dir
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert [p.name for p in sorted((run / "samples").glob("*.png"))] == ["step_00000003.png", "step_00000006.png"]
    info = json.loads((run / "run.json").read_text())
    assert info["generator"] == "deformable" and info["parameters"]["g"] > 0 and info["parameters"]["d"] == 0


def test_the_checkpoint_loads_through_the_registry_and_generates(tiny_run, demo_root) -> None:
    gen = load_generator(tiny_run.run_dir)
    assert isinstance(gen, Generator) and gen.output_names == ("deformable",) and gen.image_size == (H, W)
    assert gen.provenance()["name"] == "deformable" and gen.provenance()["step"] == 6
    assert load_generator(tiny_run.checkpoint.with_suffix(".json")).checkpoint_hash == gen.checkpoint_hash
    source = person().astype(np.int32)
    target = source.copy()
    target[KP["Lwri"]] = (46, 62)
    condition = torch.stack([to_tensor_image(np.full((H, W, 3), 90, np.uint8))] * 2)
    maps = torch.from_numpy(np.stack([gen.render_pose(target)] * 2))
    out = gen.generate(condition, maps, condition_poses=np.stack([source, source]))
    assert out.shape == (2, 3, H, W) and out.abs().max() <= 1 and not out.requires_grad
    assert torch.equal(out, gen.generate_outputs(condition, maps, np.stack([source, source]))["deformable"])
    with pytest.raises(ValueError, match="condition_poses"):
        gen.generate(condition, maps, condition_poses=source[None])


def test_synth_and_eval_gen_run_it_unchanged(tiny_run, demo_root, tmp_path) -> None:
    from augreid.evaluation.generator_eval import evaluate_generator
    from augreid.synth import SynthConfig, synthesize

    config = SynthConfig(num_poses=2, max_ids=2, batch_size=4, num_workers=0, min_quality={})
    result = synthesize(
        tmp_path / "synth", config, data=demo_root, generator=tiny_run.run_dir, progress=False, echo=lambda _m: None
    )
    assert result.summary["generator"]["name"] == "deformable" and result.counts["kept"] == 4
    report = evaluate_generator(
        tiny_run.run_dir,
        demo_root,
        out=tmp_path / "ev",
        max_pairs=4,
        batch_size=4,
        progress=False,
        realism=False,
        pose_fidelity=False,
    )
    assert list(report["methods"]) == ["deformable", "copy condition", "mean training image"]
    assert report["generator"]["name"] == "deformable" and (tmp_path / "ev" / "contact_sheet.png").is_file()


def test_settings_problems_are_reported_together() -> None:
    with pytest.raises(ConfigError) as err:
        load_preset("tiny", {"model.deform_levels": 9, "train.nn_size": 2, "train.nn_weight": -1, "model.levels": 1})
    text = str(err.value)
    for key in ("model.deform_levels", "train.nn_size", "train.nn_weight", "model.levels"):
        assert key in text
    with pytest.raises(ConfigError, match="unknown preset"):
        load_preset("nope")
    assert set(generator_plugin("deformable").presets()) >= {"cpu", "tiny"}
