"""Deformable GAN's training step on the shared resumable loop (``generators.common.loop``).

Each step renders the batch's conditions in their target poses and, for the
first ``train.self_per_batch`` conditions, in their own pose
(self-reconstruction: the target is the condition image itself, perfectly
aligned), in one forward pass. The loss is

* ``nn_weight`` x the nearest-neighbour loss against the target photo
  (``generators.common.features``): a target seen a few pixels off costs
  nothing for the offset;
* ``l1_weight`` x PG2's pose-mask L1 against the target photo (off by default:
  against a photo from another camera it rewards a flat average);
* ``self_weight`` x (pose-mask L1 + nearest-neighbour loss) of the
  self-reconstruction;
* with ``gan_weight`` > 0, a PatchGAN's LSGAN term; the discriminator takes one
  step on (condition, target) against (condition, output) before each
  generator step.

Part maps and masks are computed per batch from the pair's keypoints
(``generators.deformable.geometry``); the warp of the condition into the target
pose comes from the pair dataset, the warp onto its own pose is made here.
With ``train.ema_decay`` > 0 checkpoints hold the weights' moving average and the
training weights go to the training state, so runs still resume exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from augreid.runtime import DistInfo, seed_everything
from augreid.versions import git_revision
from generators.base import to_tensor_image, to_uint8_image
from generators.common.data import PairDataset
from generators.common.ema import WeightAverage
from generators.common.features import NearestNeighbourLoss
from generators.common.losses import pose_mask_l1
from generators.common.loop import ResumableTrainer, halving_factor, refuse_changed_settings
from generators.common.preview import grid_rows, pose_image, preview_picks
from generators.common.train_data import TrainData
from generators.common.warping import WarpConfig
from generators.deformable.config import DeformableConfig
from generators.deformable.geometry import batch_geometry
from generators.deformable.model import DeformableNet, PatchDiscriminator

GENERATOR_NAME = "deformable"  # the generators.base registry name written into every checkpoint JSON
FORMAT = "augreid-deformable/1"
WHAT = "Deformable GAN"


class DeformableTrainer(ResumableTrainer):
    """The network, its optimizer (and the optional discriminator's), the losses and one step."""

    generator_name = GENERATOR_NAME
    checkpoint_format = FORMAT
    what = WHAT
    preview_tag = "samples/condition|target_pose|warp|output|target"
    lr_hint = "Lower train.lr_g (and train.lr_d) or check the data."

    def __init__(
        self,
        cfg: DeformableConfig,
        data: TrainData,
        run_dir: Path,
        device: torch.device,
        d: DistInfo,
        *,
        progress: bool,
    ) -> None:
        super().__init__(cfg, data, run_dir, device, d, progress=progress, total=cfg.total_steps)
        self.cfg: DeformableConfig = cfg
        t, m = cfg.train, cfg.model
        self.size = (int(m.image_size[0]), int(m.image_size[1]))
        seed_everything(t.seed)  # identical initial weights on every rank and every run
        self.net = DeformableNet(m).to(device)
        self.disc = PatchDiscriminator(m).to(device) if t.gan_weight > 0 else None
        if self.channels_last:
            for module in (self.net, self.disc):
                if module is not None:
                    module.to(memory_format=torch.channels_last)
        betas = (float(t.betas[0]), float(t.betas[1]))
        self.opt_g = torch.optim.Adam(self.net.parameters(), lr=t.lr_g, betas=betas)
        disc = self.disc
        self.opt_d = torch.optim.Adam(disc.parameters(), lr=t.lr_d, betas=betas) if disc is not None else None
        self.g, self.d = self.wrap(self.net), self.wrap(self.disc)
        self.average = WeightAverage(self.net, t.ema_decay) if t.ema_decay > 0 else None
        # Frozen, outside self.net: never trained, never checkpointed.
        self.nn_loss = NearestNeighbourLoss(t.nn_stage_ends, t.nn_size).to(device) if t.nn_weight > 0 else None
        self.warp = WarpConfig(image_size=self.size) if m.uses_warp else None

    # ---- what the loop asks for

    def dataset(self) -> torch.utils.data.Dataset:
        return PairDataset(self.data.cache, self.data.pairs, warp=self.cfg.model.uses_warp, poses=True)

    def trained_modules(self) -> Iterable[torch.nn.Module]:
        return [self.net] + ([self.disc] if self.disc is not None else [])

    def guarded_modules(self) -> Iterable[torch.nn.Module]:
        return [self.net]

    def inference_net(self) -> torch.nn.Module:
        return self.net if self.average is None else self.average.module

    def checkpoint_modules(self) -> Mapping[str, torch.nn.Module | None]:
        return {"g": self.inference_net()}

    def learning_rates(self) -> dict[str, float]:
        rates = {"lr/generator": self.opt_g.param_groups[0]["lr"]}
        if self.opt_d is not None:
            rates["lr/discriminator"] = self.opt_d.param_groups[0]["lr"]
        return rates

    def meta(self) -> dict[str, Any]:
        cfg = self.cfg
        return {
            "format": FORMAT,
            "generator": GENERATOR_NAME,
            "image_size": list(self.size),
            "dataset_fingerprint": self.data.fingerprint,
            "dataset_root": str(self.data.root),
            "dataset_is_demo": self.data.is_demo,
            "pairs": int(len(self.data.pairs)),
            "pair_source": self.data.pair_source,
            "preset": cfg.name,
            "step": self.step,
            "weight_average": self.average is not None,
            "normalisation": "x / 127.5 - 1",
            "git": git_revision(),
            "torch_version": torch.__version__,
            "world_size": self.dist.world,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "config": cfg.to_dict(),
        }

    def training_state(self) -> dict[str, Any]:
        return {
            **self.base_state(),
            # The weights being trained, when the checkpoint holds their average.
            "g_training": None if self.average is None else self.net.state_dict(),
            "g_average_updates": None if self.average is None else self.average.updates,
            "opt_g": self.opt_g.state_dict(),
            "disc": None if self.disc is None else self.disc.state_dict(),
            "opt_d": None if self.opt_d is None else self.opt_d.state_dict(),
        }

    def restore(self, step: int, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
        saved = DeformableConfig.from_dict(state["config"], source=str(self.run_dir)).to_dict()
        sections = ("model", "parts", "pose", "data", "train")
        refuse_changed_settings(saved, self.cfg.to_dict(), self.run_dir, sections)
        inference = {k[2:]: v for k, v in tensors.items() if k.startswith("g.")}
        self.net.load_state_dict(state["g_training"] if state.get("g_training") is not None else inference)
        if self.average is not None:
            self.average.load(inference, state.get("g_average_updates") or 0)
        for module, key in ((self.opt_g, "opt_g"), (self.disc, "disc"), (self.opt_d, "opt_d")):
            if module is not None and state.get(key) is not None:
                module.load_state_dict(state[key])

    def before_step(self) -> None:
        t = self.cfg.train
        factor = halving_factor(self.step, t.lr_halve_every)
        for opt, base in ((self.opt_g, t.lr_g), (self.opt_d, t.lr_d)):
            if opt is not None:
                for group in opt.param_groups:
                    group["lr"] = base * factor

    def after_step(self, stage: int) -> None:
        if self.average is not None:
            self.average.update(self.net)

    # ---- one step

    def _own_warp(self, condition: torch.Tensor, poses: torch.Tensor) -> torch.Tensor:
        """The conditions warped onto their own poses: what the warp input is for a self-reconstruction."""
        assert self.warp is not None
        images = to_uint8_image(condition)
        out = [
            to_tensor_image(self.warp.warp_image(image, pose, pose)[0])
            for image, pose in zip(images, poses.cpu().numpy())
        ]
        return torch.stack(out).to(condition.device, condition.dtype)

    def network_inputs(self, b: dict[str, torch.Tensor], own: int) -> dict[str, torch.Tensor]:
        """The batch's pairs, then its first ``own`` conditions in their own pose, as the network's arguments."""
        widths = self.cfg.parts
        theta, masks = batch_geometry(b["condition_pose"], b["target_pose"], self.size, widths, self.device)
        inputs = {
            "condition": b["condition"],
            "condition_maps": b["condition_maps"],
            "target_maps": b["target_maps"],
            "theta": theta,
            "masks": masks,
        }
        if "warped" in b:
            inputs["warped"] = b["warped"]
        if own == 0:
            return inputs
        poses = b["condition_pose"][:own]
        own_theta, own_masks = batch_geometry(poses, poses, self.size, widths, self.device)
        extra = {
            "condition": b["condition"][:own],
            "condition_maps": b["condition_maps"][:own],
            "target_maps": b["condition_maps"][:own],
            "theta": own_theta,
            "masks": own_masks,
        }
        if "warped" in b:
            extra["warped"] = self._own_warp(b["condition"][:own], poses)
        return {k: torch.cat([v, extra[k]]) for k, v in inputs.items()}

    def train_step(self, b: dict[str, torch.Tensor], stage: int) -> dict[str, torch.Tensor]:
        t = self.cfg.train
        n = b["condition"].shape[0]
        own = min(t.self_per_batch, n) if t.self_weight > 0 else 0
        with self.autocast():
            out = self.g(**self.network_inputs(b, own))
        pair, target, mask = out[:n], b["target"], b["target_mask"]
        values: dict[str, torch.Tensor] = {}
        loss = pair.new_zeros((), dtype=torch.float32)
        if self.nn_loss is not None:
            values["train/nearest_neighbour"] = self.nn_loss(pair, target, mask)
            loss = loss + t.nn_weight * values["train/nearest_neighbour"]
        if t.l1_weight > 0:
            values["train/pose_mask_l1"] = pose_mask_l1(pair, target, mask)
            loss = loss + t.l1_weight * values["train/pose_mask_l1"]
        if own:
            rebuilt, original, own_mask = out[n:], b["condition"][:own], b["condition_mask"][:own]
            term = pose_mask_l1(rebuilt, original, own_mask)
            if self.nn_loss is not None:
                term = term + t.nn_weight * self.nn_loss(rebuilt, original, own_mask)
            values["train/self_reconstruction"] = term
            loss = loss + t.self_weight * term
        if self.disc is not None:
            adversarial = self._adversarial(b["condition"], target, pair, values)
            loss = loss + t.gan_weight * adversarial
        values["train/loss"] = loss
        self.check_finite(values)
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        return {k: v.detach() for k, v in values.items()}

    def _adversarial(
        self, condition: torch.Tensor, target: torch.Tensor, fake: torch.Tensor, values: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """One LSGAN discriminator step, then the generator's adversarial term through the updated discriminator."""
        assert self.disc is not None and self.opt_d is not None
        with self.autocast():
            real_score = self.d(condition, target).float()
            fake_score = self.d(condition, fake.detach()).float()
        d_loss = 0.5 * (((real_score - 1.0) ** 2).mean() + (fake_score**2).mean())
        self.check_finite({"train/d_loss": d_loss})
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        self.disc.requires_grad_(False)
        try:
            with self.autocast():
                adversarial = ((self.disc(condition, fake).float() - 1.0) ** 2).mean()
        finally:
            self.disc.requires_grad_(True)
        values["train/d_loss"] = d_loss.detach()
        values["train/g_adversarial"] = adversarial
        return adversarial

    # ---- previews

    @torch.no_grad()
    def preview(self) -> torch.Tensor:
        """condition | target pose | warp | output (the checkpointed weights) | target, on fixed training pairs."""
        dataset = PairDataset(self.data.cache, self.data.pairs, warp=self.cfg.model.uses_warp, poses=True)
        items = [dataset[(i, False)] for i in preview_picks(len(dataset))]
        batch = {k: torch.stack([item[k] for item in items]).to(self.device) for k in items[0]}
        net = self.inference_net()
        was_training = net.training
        net.eval()
        try:
            out = net(**self.network_inputs(batch, 0))
        finally:
            net.train(was_training)
        warped = batch.get("warped", torch.zeros_like(out))
        return grid_rows([batch["condition"], pose_image(batch["target_maps"]), warped, out, batch["target"]])


def parameter_counts(trainer: DeformableTrainer) -> dict[str, int]:
    """Parameters of the generator network and of the discriminator (0 without one)."""
    count = lambda m: 0 if m is None else int(sum(p.numel() for p in m.parameters()))  # noqa: E731
    return {"g": count(trainer.net), "d": count(trainer.disc)}


__all__ = ["FORMAT", "GENERATOR_NAME", "WHAT", "DeformableTrainer", "parameter_counts"]
