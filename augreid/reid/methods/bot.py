"""The strong baseline of Luo et al. 2019 ("Bag of Tricks and a Strong Baseline for Deep Person Re-ID", BoT).

* BNNeck: pooled feature -> BatchNorm (shift frozen at 0) -> bias-free classifier.
  The batch-hard triplet loss (margin ``config.margin``) sees the feature before
  the BN, the label-smoothed cross entropy the logits after it; retrieval uses
  the post-BN feature.
* P identities x K images per batch; random erasing and random crop come with
  the default transforms; label smoothing is ``real_label_smoothing``.
* Linear warmup from ``warmup_factor * lr`` over ``warmup_epochs``, then the
  learning rate is multiplied by ``gamma`` at every epoch of ``stepsize`` (both at
  BoT's shares of the run unless given: ``ReidConfig.schedule``).
* Last stride 1 where augreid knows the backbone's last downsampling
  (``LAST_STRIDE``): the final feature map keeps twice the resolution. Its
  option ``last_stride`` (``[reid.method_options]``) asks for 1 or 2; unset, other
  backbones keep their own, and asking for 1 on one of them is a settings error.

Unlike torchreid's engines this one also runs under ``torchrun``: the model is
wrapped in ``DistributedDataParallel`` by ``train-reid`` and every rank trains on
its own share of the same seeded batch sequence.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn
from torchreid.reid.engine import Engine

from augreid.errors import ConfigError
from augreid.reid.config import ReidConfig
from augreid.reid.engine import label_criterion, real_accuracy, synthetic_flags, triplet_criterion
from augreid.reid.methods.base import ReidMethod
from augreid.reid.models import build_torchreid_model

# torchreid model -> the convolutions whose stride 2 makes the last downsampling.
LAST_STRIDE: dict[str, tuple[str, ...]] = {
    "mobilenetv2_x1_0": ("conv7.0.dwconv2.conv",),
    "mobilenetv2_x1_4": ("conv7.0.dwconv2.conv",),
    "resnet18": ("layer4.0.conv1", "layer4.0.downsample.0"),
    "resnet34": ("layer4.0.conv1", "layer4.0.downsample.0"),
    "resnet50": ("layer4.0.conv2", "layer4.0.downsample.0"),
    "resnet101": ("layer4.0.conv2", "layer4.0.downsample.0"),
}


def set_last_stride(model_name: str, backbone: nn.Module, stride: int) -> bool:
    """Give the backbone's last downsampling ``stride``; False when the model has no known last stride."""
    names = LAST_STRIDE.get(model_name)
    if names is None:
        return False
    modules = dict(backbone.named_modules())
    for name in names:
        modules[name].stride = (stride, stride)
    return True


@runtime_checkable
class FeatureMaps(Protocol):
    """A torchreid backbone's ``featuremaps`` (the last feature map), which ``nn.Module`` does not declare."""

    def featuremaps(self, x: torch.Tensor) -> torch.Tensor: ...


class BNNeckModel(nn.Module):
    """A torchreid backbone's pooled feature with BoT's BNNeck head."""

    def __init__(self, backbone: nn.Module, feature_dim: int, num_classes: int) -> None:
        super().__init__()
        assert isinstance(backbone, FeatureMaps), "BotMethod.build_model checks featuremaps()"
        self.backbone = backbone
        self.bottleneck = nn.BatchNorm1d(feature_dim)
        self.bottleneck.bias.requires_grad_(False)  # BoT: a shift would move the features off the hypersphere
        self.classifier = nn.Linear(feature_dim, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)

    def pooled(self, images: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.backbone.featuremaps(images), 1).flatten(1)

    def forward(self, images: torch.Tensor):
        feature = self.pooled(images)
        neck = self.bottleneck(feature)
        if not self.training:
            return neck
        return self.classifier(neck), feature


class WarmupMultiStepLR(torch.optim.lr_scheduler.LRScheduler):
    """BoT's schedule, stepped once per epoch: linear warmup, then ``gamma`` at each milestone."""

    def __init__(
        self,
        optimizer,
        milestones: list[int],
        gamma: float = 0.1,
        warmup_epochs: int = 10,
        warmup_factor: float = 0.1,
        last_epoch: int = -1,
    ) -> None:
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma, self.warmup_epochs, self.warmup_factor = gamma, int(warmup_epochs), float(warmup_factor)
        super().__init__(optimizer, last_epoch)

    def factor(self, epoch: int) -> float:
        warm = 1.0
        if epoch < self.warmup_epochs:
            warm = self.warmup_factor + (1.0 - self.warmup_factor) * epoch / self.warmup_epochs
        return warm * self.gamma ** bisect_right(self.milestones, epoch)

    def get_lr(self) -> list[float | torch.Tensor]:  # LRScheduler's type: base_lrs may be tensors
        return [base * self.factor(self.last_epoch) for base in self.base_lrs]


class BotEngine(Engine):
    """One epoch of BoT over the data manager's P x K batches (torchreid's ``Engine.train`` loop and logs)."""

    def __init__(
        self, datamanager, model: nn.Module, optimizer, scheduler, criterion_x, criterion_t, use_gpu: bool = False
    ) -> None:
        super().__init__(datamanager, use_gpu=use_gpu)
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.criterion_x, self.criterion_t = criterion_x, criterion_t
        self.register_model("model", model, optimizer, scheduler)

    def forward_backward(self, data: dict) -> dict[str, float]:
        imgs, pids = self.parse_data_for_train(data)
        device = next(self.model.parameters()).device
        imgs, pids = imgs.to(device, non_blocking=True), pids.to(device, non_blocking=True)
        is_synthetic = synthetic_flags(data).to(device)
        logits, feature = self.model(imgs)
        loss_x = self.criterion_x(logits, pids, is_synthetic=is_synthetic)
        loss_t = self.criterion_t(feature, pids, is_synthetic=is_synthetic)
        loss = loss_x + loss_t
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {
            "loss": loss.item(),
            "loss_x": loss_x.item(),
            "loss_t": loss_t.item(),
            "acc": real_accuracy(logits, pids, is_synthetic),
            "synthetic_share": is_synthetic.float().mean().item(),
        }


@dataclass
class BotOptions:
    # stride of the backbone's last downsampling; None = 1 where LAST_STRIDE knows the backbone, else its own
    last_stride: Literal[1, 2] | None = None


class BotMethod(ReidMethod):
    name = "bot"
    identity_batches = True
    supports_ddp = True
    warmup_schedule = True
    Options = BotOptions

    def model_options(self, config: ReidConfig) -> dict[str, Any]:
        """The stride the network is built with (``None``: the backbone's own), as the checkpoint records it."""
        requested = config.options_of(self).last_stride
        if config.model not in LAST_STRIDE:
            if requested == 1:
                raise ConfigError(
                    f"method_options.last_stride: 1 is only known for {', '.join(LAST_STRIDE)}; {config.model} "
                    "keeps its own last stride (leave last_stride unset)"
                )
            return {"last_stride": None}
        return {"last_stride": requested or 1}

    def build_model(self, model_name: str, num_classes: int, options: dict[str, Any]) -> nn.Module:
        backbone = build_torchreid_model(model_name, num_classes, "softmax")
        if not isinstance(backbone, FeatureMaps):
            raise ConfigError(f"model {model_name}: bot needs a torchreid backbone with featuremaps()")
        backbone.classifier = nn.Identity()  # BNNeck brings its own bias-free classifier
        stride = options.get("last_stride", 1)
        if stride == 1:
            # Checkpoints written before the option was checked may record 1 for a backbone it was never
            # applied to (set_last_stride returns False): they were trained with the backbone's own stride.
            set_last_stride(model_name, backbone, 1)
        with torch.no_grad():
            was_training = backbone.training
            feature_dim = backbone.eval().featuremaps(torch.zeros(1, 3, 64, 32)).shape[1]
            backbone.train(was_training)
        return BNNeckModel(backbone, int(feature_dim), num_classes)

    def backbone(self, model: nn.Module) -> nn.Module:
        assert isinstance(model, BNNeckModel), "build_model made it"
        return model.backbone

    def build_scheduler(self, optimizer, config: ReidConfig):
        warmup, milestones = config.schedule
        return WarmupMultiStepLR(optimizer, milestones, config.gamma, warmup, config.warmup_factor)

    def build_engine(self, config, datamanager, model, optimizer, scheduler, use_gpu: bool):
        return BotEngine(
            datamanager,
            model,
            optimizer,
            scheduler,
            label_criterion(config, datamanager),
            triplet_criterion(config),
            use_gpu=use_gpu,
        )
