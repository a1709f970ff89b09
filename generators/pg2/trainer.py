"""The PG2 training loop: models, optimizers and one step per stage on the shared resumable loop
(``generators.common.loop``: batches, logging, previews, checkpoints, exact resume).

Stage II's discriminator and GAN loss are options (``model.d_type``,
``train.gan_loss``, ``train.fm_weight``): PG2's DCGAN discriminator with BCE,
or pix2pixHD's multi-scale PatchGANs with LSGAN / hinge and feature matching
(``generators.pg2.multiscale``). Either way the masked L1 term stays. G1's pose-mask L1
can gain a perceptual term (``train.perceptual_weight``, ``generators.common.features``).
With ``train.ema_decay`` > 0, checkpoints hold an exponential moving average of G1's weights
(``generators.common.ema``) and the training weights go to the training state; at the end of
stage I, G1 becomes its average, so that stage II refines the G1 that inference uses.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from augreid.errors import ConfigError
from augreid.runtime import DistInfo, seed_everything
from augreid.versions import git_revision
from generators.common.data import PairDataset
from generators.common.ema import WeightAverage
from generators.common.features import PerceptualLoss
from generators.common.loop import NonFinite, ResumableTrainer, TrainingDiverged, halving_factor
from generators.common.train_data import TrainData
from generators.pg2 import losses
from generators.pg2 import multiscale as ms
from generators.pg2.checkpoint import FORMAT
from generators.pg2.config import PG2Config
from generators.pg2.model import PG2
from generators.pg2.preview import preview_grid

__all__ = ["GENERATOR_NAME", "NonFinite", "Trainer", "TrainingDiverged"]

GENERATOR_NAME = "pg2"  # the generators.base registry name written into every checkpoint JSON
# Settings that only shape stage II: a run that has not trained stage II yet may
# resume with other values (how bench/bench_stage2.py gives two stage IIs one G1).
STAGE2_KEYS = {("model", k) for k in ("g2_hidden", "d_hidden", "d_layers", "d_norm", "d_type", "d_scales")} | {
    ("train", k) for k in ("lr_d", "l1_weight", "gan_loss", "fm_weight")
}


def _compare_configs(saved: dict[str, Any], current: dict[str, Any], where: Path, stage2_trained: bool) -> bool:
    """Resuming with a different model, pose rendering or data is an error; step counts and logging may change,
    and so may stage-II settings while stage II has not started. Returns whether stage-II settings changed."""
    saved = PG2Config.from_dict(saved, source=str(where)).to_dict()  # keys added since then get their defaults
    changed, stage2_changed = [], False
    for section in ("model", "pose", "data", "train"):
        for key, value in current[section].items():
            if section == "train" and key.endswith("_steps"):
                continue
            if saved[section].get(key) == value:
                continue
            if (section, key) in STAGE2_KEYS and not stage2_trained:
                stage2_changed = True
                continue
            changed.append(f"{section}.{key}: {saved[section].get(key)!r} -> {value!r}")
    if changed:
        raise ConfigError(
            f"{where} holds checkpoints of a different configuration ({'; '.join(changed)}); "
            "use another --out folder or --no-resume"
        )
    return stage2_changed


class Trainer(ResumableTrainer):
    """PG2's models, optimizers and steps on the shared loop (``generators.common.loop.ResumableTrainer``)."""

    generator_name = GENERATOR_NAME
    checkpoint_format = FORMAT
    what = "PG2"
    preview_tag = "samples/condition|target_pose|G1|refined|target"
    lr_hint = "Lower train.lr_g / train.lr_d or check the data."

    def __init__(
        self, cfg: PG2Config, data: TrainData, run_dir: Path, device: torch.device, d: DistInfo, *, progress: bool
    ) -> None:
        super().__init__(cfg, data, run_dir, device, d, progress=progress, total=cfg.total_steps)
        self.cfg: PG2Config = cfg
        t = cfg.train
        self.stage1_end = t.stage1_steps
        self.stage2_end = t.stage1_steps + t.stage2_steps
        seed_everything(t.seed)  # identical initial weights on every rank and every run
        self.net = PG2(cfg.model, with_g2=cfg.has_g2).to(device)
        self.disc = ms.build_discriminator(cfg.model).to(device) if cfg.has_g2 else None
        if self.channels_last:
            self.net.to(memory_format=torch.channels_last)
            if self.disc is not None:
                self.disc.to(memory_format=torch.channels_last)
        betas = (float(t.betas[0]), float(t.betas[1]))
        self.opt_g1 = torch.optim.Adam(self.net.g1.parameters(), lr=t.lr_g, betas=betas)
        # net.g2 and disc exist exactly when cfg.has_g2.
        g2, disc = self.net.g2, self.disc
        self.opt_g2 = torch.optim.Adam(g2.parameters(), lr=t.lr_g, betas=betas) if g2 is not None else None
        self.opt_d = torch.optim.Adam(disc.parameters(), lr=t.lr_d, betas=betas) if disc is not None else None
        self.g1, self.g2, self.d = self.wrap(self.net.g1), self.wrap(self.net.g2), self.wrap(self.disc)
        self.g1_average = WeightAverage(self.net.g1, t.ema_decay) if t.ema_decay > 0 else None
        # Frozen, outside self.net: never trained, never checkpointed.
        self.perceptual = PerceptualLoss().to(device) if t.perceptual_weight > 0 else None

    # ---- bookkeeping

    def stage(self, step: int) -> int:
        return 1 if step < self.stage1_end else 2 if step < self.stage2_end else 3

    def kept_steps(self) -> set[int]:
        return {self.stage1_end}  # the G1-only checkpoint at the end of stage I

    def trained_modules(self) -> Iterable[torch.nn.Module]:
        return [self.net] + ([self.disc] if self.disc is not None else [])

    def guarded_modules(self) -> Iterable[torch.nn.Module]:
        return [self.net]

    def dataset(self) -> torch.utils.data.Dataset:
        return PairDataset(self.data.cache, self.data.pairs, warp=self.cfg.model.warp_base != "off")

    def preview(self) -> torch.Tensor:
        return preview_grid(
            self.inference_g1(), self.net.g2, self.data, self.device, with_g2=self.step > self.stage1_end
        )

    def learning_rates(self) -> dict[str, float]:
        rates = {"lr/generator": self.opt_g1.param_groups[0]["lr"]}
        if self.opt_d is not None:
            rates["lr/discriminator"] = self.opt_d.param_groups[0]["lr"]
        return rates

    def meta(self) -> dict[str, Any]:
        cfg = self.cfg
        trained_g2 = self.step > self.stage1_end
        return {
            "format": FORMAT,
            "generator": GENERATOR_NAME,
            "image_size": list(cfg.model.image_size),
            "pose_map_mode": cfg.pose.map_mode,
            "pose_radius": cfg.pose.radius,
            "pose_sigma": cfg.pose.sigma,
            "mask_radius": cfg.pose.mask_radius,
            "dataset_fingerprint": self.data.fingerprint,
            "dataset_root": str(self.data.root),
            "dataset_is_demo": self.data.is_demo,
            "pairs": int(len(self.data.pairs)),
            "pair_source": self.data.pair_source,
            "preset": cfg.name,
            "step": self.step,
            "stage": self.stage(max(self.step - 1, 0)),
            "has_g2": trained_g2,
            "normalisation": "x / 127.5 - 1",
            "git": git_revision(),
            "torch_version": torch.__version__,
            "world_size": self.dist.world,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "config": cfg.to_dict(),
        }

    def checkpointed_average(self) -> WeightAverage | None:
        """G1's average while checkpoints hold it instead of the training weights (stage I with ema_decay)."""
        return self.g1_average if self.step <= self.stage1_end else None

    def inference_g1(self) -> torch.nn.Module:
        average = self.checkpointed_average()
        return self.net.g1 if average is None else average.module

    def checkpoint_modules(self) -> Mapping[str, torch.nn.Module | None]:
        return {"g1": self.inference_g1(), "g2": self.net.g2 if self.step > self.stage1_end else None}

    def training_state(self) -> dict[str, Any]:
        return {
            **self.base_state(),
            # The weights being trained, when the checkpoint's G1 is their average.
            "g1_training": None if self.checkpointed_average() is None else self.net.g1.state_dict(),
            "g1_average_updates": None if self.g1_average is None else self.g1_average.updates,
            "disc": None if self.disc is None else self.disc.state_dict(),
            "opt_g1": self.opt_g1.state_dict(),
            "opt_g2": None if self.opt_g2 is None else self.opt_g2.state_dict(),
            "opt_d": None if self.opt_d is None else self.opt_d.state_dict(),
        }

    def restore(self, step: int, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
        stage2_trained = step > state["config"]["train"]["stage1_steps"]
        if _compare_configs(state["config"], self.cfg.to_dict(), self.run_dir, stage2_trained):
            for key in ("disc", "opt_g2", "opt_d"):  # untrained stage-II parts of another layout start fresh
                state[key] = None
        g1 = {k[3:]: v for k, v in tensors.items() if k.startswith("g1.")}
        self.net.g1.load_state_dict(state["g1_training"] if state.get("g1_training") is not None else g1)
        if self.g1_average is not None:
            self.g1_average.load(g1, state.get("g1_average_updates") or 0)
        if self.net.g2 is not None and any(k.startswith("g2.") for k in tensors):
            self.net.g2.load_state_dict({k[3:]: v for k, v in tensors.items() if k.startswith("g2.")})
        for module, key in (
            (self.disc, "disc"),
            (self.opt_g1, "opt_g1"),
            (self.opt_g2, "opt_g2"),
            (self.opt_d, "opt_d"),
        ):
            if module is not None and state.get(key) is not None:
                module.load_state_dict(state[key])

    # ---- one step per stage

    def before_step(self) -> None:
        t = self.cfg.train
        factor = halving_factor(self.step, t.lr_halve_every)
        for opt, base in ((self.opt_g1, t.lr_g), (self.opt_g2, t.lr_g), (self.opt_d, t.lr_d)):
            if opt is not None:
                for group in opt.param_groups:
                    group["lr"] = base * factor

    def train_step(self, batch: dict[str, torch.Tensor], stage: int) -> dict[str, torch.Tensor]:
        return self.step_stage1(batch) if stage == 1 else self.step_adversarial(batch, joint=stage == 3)

    def after_step(self, stage: int) -> None:
        if stage == 1:
            self._average_g1()

    def step_stage1(self, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with self.autocast():
            coarse = self.g1(b["condition"], b["target_maps"], b.get("warped"))
        t, target, mask = self.cfg.train, b["target"], b["target_mask"]
        values = {"stage1/pose_mask_l1": losses.pose_mask_l1(coarse, target, mask)}
        loss = values["stage1/pose_mask_l1"]
        if self.perceptual is not None:
            values["stage1/perceptual"] = self.perceptual(coarse, target, mask)
            loss = loss + t.perceptual_weight * values["stage1/perceptual"]
        if t.coarse_l1_weight > 0:
            values["stage1/coarse_l1"] = losses.coarse_pose_mask_l1(coarse, target, mask, t.coarse_factor)
            loss = loss + t.coarse_l1_weight * values["stage1/coarse_l1"]
        self.check_finite(values)
        self.opt_g1.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g1.step()
        return {k: v.detach() for k, v in values.items()}

    def step_adversarial(self, b: dict[str, torch.Tensor], joint: bool) -> dict[str, torch.Tensor]:
        # stage() gives 2 or 3 only when stage II has steps, i.e. cfg.has_g2.
        assert self.disc is not None and self.opt_d is not None and self.opt_g2 is not None, "stage II needs cfg.has_g2"
        cond, target, mask = b["condition"], b["target"], b["target_mask"]
        t = self.cfg.train
        with self.autocast():
            with contextlib.nullcontext() if joint else torch.no_grad():
                coarse = self.g1(cond, b["target_maps"], b.get("warped"))
            refined = coarse + self.g2(coarse, cond)
            pairs_cond = torch.cat([cond, cond])
            # D step: one batch of [real; fake] so that batch norm sees both, as in the authors' code.
            d_real, d_fake = ms.split_real_fake(self.d(pairs_cond, torch.cat([target, refined.detach()])))
        d_loss = ms.discriminator_loss(d_real, d_fake, t.gan_loss)
        self.check_finite({"stage2/d_loss": d_loss})
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        # G step through the updated D; D's weights get no gradient here.
        self.disc.requires_grad_(False)
        try:
            with self.autocast():
                g_real, g_fake = ms.split_real_fake(self.disc(pairs_cond, torch.cat([target, refined])))
        finally:
            self.disc.requires_grad_(True)
        adv = ms.generator_adversarial(g_fake, t.gan_loss)
        l1 = losses.pose_mask_l1(refined, target, mask)
        g_loss = adv + t.l1_weight * l1
        out = {
            "stage2/d_loss": d_loss.detach(),
            "stage2/g_adversarial": adv.detach(),
            "stage2/g_pose_mask_l1": l1.detach(),
        }
        if t.fm_weight > 0:
            fm = ms.feature_matching(g_fake, g_real)
            g_loss = g_loss + t.fm_weight * fm
            out["stage2/g_feature_matching"] = fm.detach()
        if joint:
            l1_g1 = losses.pose_mask_l1(coarse, target, mask)
            g_loss = g_loss + l1_g1
            out["joint/g1_pose_mask_l1"] = l1_g1.detach()
        out["stage2/g_loss"] = g_loss.detach()
        self.check_finite({"stage2/g_loss": g_loss})
        opts = [self.opt_g2] + ([self.opt_g1] if joint else [])
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        g_loss.backward()
        for opt in opts:
            opt.step()
        out["stage2/d_real"] = ms.realness(d_real, t.gan_loss).detach()
        out["stage2/d_fake"] = ms.realness(d_fake, t.gan_loss).detach()
        return out

    def _average_g1(self) -> None:
        if self.g1_average is None:
            return
        self.g1_average.update(self.net.g1)
        if self.step == self.stage1_end < self.total:  # stage II and joint training start from the averaged G1
            self.net.g1.load_state_dict(self.g1_average.module.state_dict())
