"""torchreid engines and a data manager that know which images are synthetic.

``ReidDataManager`` is a torchreid ``DataManager`` (its transforms, its
``train_loader`` / ``test_loader`` contract) over the real+synthetic union.
``SyntheticSoftmaxEngine`` and ``SyntheticTripletEngine`` subclass
``ImageSoftmaxEngine`` / ``ImageTripletEngine`` and only change
``forward_backward``: the batch's ``dsetid`` tells the losses which images are
synthetic. Everything else (the epoch loop, TensorBoard scalars ``Train/*``,
evaluation) is torchreid's.

Trap: torchreid engines accept ``scheduler=None`` and then crash in
``save_model`` (``None.state_dict()``). ``ensure_scheduler`` replaces a missing
scheduler with a constant one, so an engine always has a scheduler.
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Callable
from functools import partial, reduce
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from torchreid.reid import metrics
from torchreid.reid.data.datamanager import DataManager
from torchreid.reid.engine import ImageSoftmaxEngine, ImageTripletEngine

from augreid.data.market import MarketDataset
from augreid.reid.config import ReidConfig
from augreid.reid.datasets import REAL, REGISTERED_NAMES, SYNTHETIC, SyntheticSet, build_union
from augreid.reid.losses import SyntheticAwareTripletLoss, SyntheticLabelCrossEntropy
from augreid.reid.models import build_torchreid_model
from augreid.reid.sampler import MixedBatchSampler, RankBatches

__all__ = ["ReidDataManager", "SyntheticSoftmaxEngine", "SyntheticTripletEngine", "build_torchreid_model"]

DATASET_NAME = REGISTERED_NAMES[0]


def ensure_scheduler(optimizer, scheduler=None):
    """``scheduler``, or a scheduler that keeps the learning rate constant."""
    if scheduler is not None:
        return scheduler
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)


class ReidDataManager(DataManager):
    """Train loader over real (+ synthetic) images, test loaders over the real query/gallery."""

    data_type = "image"

    def __init__(
        self,
        market: MarketDataset,
        synthetic: SyntheticSet | None,
        config: ReidConfig,
        use_gpu: bool = False,
        identity: bool = False,
        rank: int = 0,
        world: int = 1,
    ):
        super().__init__(
            sources=[DATASET_NAME],
            targets=[DATASET_NAME],
            height=config.height,
            width=config.width,
            transforms=list(config.transforms),
            norm_mean=list(config.norm_mean),
            norm_std=list(config.norm_std),
            use_gpu=use_gpu,
        )
        self.trainset = build_union(market, synthetic, transform=self.transform_tr, mode="train")
        self._num_train_pids = market.num_train_pids
        self._num_train_cams = self.trainset.num_train_cams
        items = self.trainset.train
        real = [i for i, item in enumerate(items) if item[3] == REAL]
        synth = [i for i, item in enumerate(items) if item[3] == SYNTHETIC]
        # Every arm samples the real images alike; synthetic ones ride on top (none in a real-only run).
        per_batch = config.synthetic_per_batch if synth else 0
        self.synthetic_per_batch = per_batch
        self.batch_sampler = MixedBatchSampler(
            items,
            real,
            synth,
            config.batch_size,
            per_batch,
            identity=identity,
            num_instances=config.num_instances,
            iters=config.iters_per_epoch,
            secondary_seed=config.seed,
        )
        loader_args: dict[str, Any] = {"num_workers": config.workers, "pin_memory": self.use_gpu}
        if config.workers > 0:
            loader_args["persistent_workers"] = False
        batches = self.batch_sampler if world == 1 else RankBatches(self.batch_sampler, rank, world)
        self.train_loader = DataLoader(self.trainset, batch_sampler=batches, **loader_args)
        self.num_real_images, self.num_synthetic_images = len(real), len(synth)
        self.test_loader: dict[str, dict[str, DataLoader | None]] = {DATASET_NAME: {"query": None, "gallery": None}}
        self.test_dataset = {
            DATASET_NAME: {
                "query": market_items_or_none(market, "query"),
                "gallery": market_items_or_none(market, "gallery"),
            }
        }
        if market.query and market.gallery:
            for split in ("query", "gallery"):
                dataset = build_union(market, None, transform=self.transform_te, mode=split)
                self.test_loader[DATASET_NAME][split] = DataLoader(
                    dataset, batch_size=max(config.batch_size, 64), shuffle=False, drop_last=False, **loader_args
                )


def market_items_or_none(market: MarketDataset, split: str):
    records = market.query if split == "query" else market.gallery
    return [(str(r.path), r.pid, r.camid, REAL) for r in records] or None


def in_memory_format(engine, memory_format: torch.memory_format) -> None:
    """Make ``engine`` hand its model input batches in ``memory_format`` (channels_last: the model's own)."""
    parse = engine.parse_data_for_train

    def parse_in_format(data):
        imgs, pids = parse(data)
        return imgs.contiguous(memory_format=memory_format), pids

    engine.parse_data_for_train = parse_in_format


def synthetic_flags(data: dict) -> torch.Tensor:
    return torch.as_tensor(data["dsetid"]) == SYNTHETIC


def real_accuracy(outputs, pids: torch.Tensor, is_synthetic: torch.Tensor) -> float:
    """Top-1 training accuracy on the real images of the batch (synthetic labels may be soft)."""
    logits = outputs[0] if isinstance(outputs, (tuple, list)) else outputs
    keep = ~is_synthetic.to(logits.device)
    if keep.any():
        logits, pids = logits[keep], pids[keep]
    return metrics.accuracy(logits, pids)[0].item()


class SyntheticSoftmaxEngine(ImageSoftmaxEngine):
    """``ImageSoftmaxEngine`` whose cross entropy gives synthetic images their scheme's target."""

    def __init__(
        self, datamanager, model, optimizer, scheduler, criterion: SyntheticLabelCrossEntropy, use_gpu: bool = False
    ):
        scheduler = ensure_scheduler(optimizer, scheduler)
        super().__init__(datamanager, model, optimizer, scheduler=scheduler, use_gpu=use_gpu)
        self.criterion: Callable[..., torch.Tensor] = criterion

    def forward_backward(self, data):
        imgs, pids = self.parse_data_for_train(data)
        is_synthetic = synthetic_flags(data)
        if self.use_gpu:
            imgs, pids, is_synthetic = imgs.cuda(), pids.cuda(), is_synthetic.cuda()
        outputs = self.model(imgs)
        loss = self.compute_loss(partial(self.criterion, is_synthetic=is_synthetic), outputs, pids)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {
            "loss": loss.item(),
            "acc": real_accuracy(outputs, pids, is_synthetic),
            "synthetic_share": is_synthetic.float().mean().item(),
        }


class SyntheticTripletEngine(ImageTripletEngine):
    """``ImageTripletEngine`` (softmax + batch-hard triplet) with scheme-aware losses."""

    def __init__(
        self,
        datamanager,
        model,
        optimizer,
        scheduler,
        criterion_x: SyntheticLabelCrossEntropy,
        criterion_t: SyntheticAwareTripletLoss,
        weight_t: float = 1.0,
        weight_x: float = 1.0,
        use_gpu: bool = False,
    ):
        scheduler = ensure_scheduler(optimizer, scheduler)
        super().__init__(
            datamanager,
            model,
            optimizer,
            margin=criterion_t.margin,
            weight_t=weight_t,
            weight_x=weight_x,
            scheduler=scheduler,
            use_gpu=use_gpu,
        )
        self.criterion_x: Callable[..., torch.Tensor] = criterion_x
        self.criterion_t: Callable[..., torch.Tensor] = criterion_t

    def forward_backward(self, data):
        imgs, pids = self.parse_data_for_train(data)
        is_synthetic = synthetic_flags(data)
        if self.use_gpu:
            imgs, pids, is_synthetic = imgs.cuda(), pids.cuda(), is_synthetic.cuda()
        outputs, features = self.model(imgs)
        terms: list[torch.Tensor] = []
        summary: dict[str, float] = {}
        if self.weight_t > 0:
            loss_t = self.compute_loss(partial(self.criterion_t, is_synthetic=is_synthetic), features, pids)
            terms.append(self.weight_t * loss_t)
            summary["loss_t"] = loss_t.item()
        if self.weight_x > 0:
            loss_x = self.compute_loss(partial(self.criterion_x, is_synthetic=is_synthetic), outputs, pids)
            terms.append(self.weight_x * loss_x)
            summary["loss_x"] = loss_x.item()
        loss: torch.Tensor = reduce(operator.add, terms)  # weight_t * loss_t + weight_x * loss_x
        summary["acc"] = real_accuracy(outputs, pids, is_synthetic)
        summary["loss"] = loss.item()
        summary["synthetic_share"] = is_synthetic.float().mean().item()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return summary


def label_criterion(config: ReidConfig, datamanager: ReidDataManager) -> SyntheticLabelCrossEntropy:
    """Cross entropy with the targets of ``config.label_scheme`` for synthetic images."""
    return SyntheticLabelCrossEntropy(
        datamanager.num_train_pids, config.label_scheme, config.label_smoothing, config.real_label_smoothing
    )


def triplet_criterion(config: ReidConfig) -> SyntheticAwareTripletLoss:
    """Batch-hard triplet loss; synthetic images play the role their label scheme allows."""
    return SyntheticAwareTripletLoss.for_scheme(config.label_scheme, config.margin)


@torch.no_grad()
def query_gallery_distances(model, datamanager: ReidDataManager):
    """Euclidean query x gallery distances of the real test split, with pids and cameras (None: no test split)."""
    loaders = datamanager.test_loader[DATASET_NAME]
    if loaders["query"] is None:
        return None
    model.eval()
    device = next(model.parameters()).device

    def features(loader):
        feats, pids, camids = [], [], []
        for data in loader:
            feats.append(model(data["img"].to(device)).cpu())
            pids += data["pid"].tolist()
            camids += data["camid"].tolist()
        return torch.cat(feats), np.asarray(pids), np.asarray(camids)

    qf, q_pids, q_camids = features(loaders["query"])
    gf, g_pids, g_camids = features(loaders["gallery"])
    distmat = metrics.compute_distance_matrix(qf, gf, "euclidean").numpy()
    return distmat, q_pids, g_pids, q_camids, g_camids


def evaluate_end_of_training(
    model, datamanager: ReidDataManager, evaluate_rank, ranks=(1, 5, 10)
) -> dict[str, Any] | None:
    """rank-k and mAP on the real query/gallery (euclidean, no re-ranking) with ``evaluate_rank``.

    ``evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids) -> (cmc, mAP)`` is passed in
    (``augreid.evaluation.evaluate_rank`` from the layers above): torchreid's own evaluator
    crashes on small galleries ("inhomogeneous shape") after training has finished.
    """
    found = query_gallery_distances(model, datamanager)
    if found is None:
        return None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Number of gallery samples is quite small")
        cmc, mean_ap = evaluate_rank(*found)
    name = f"{getattr(evaluate_rank, '__module__', '?')}.{getattr(evaluate_rank, '__name__', '?')} (euclidean)"
    out: dict[str, Any] = {"evaluator": name, "mAP": float(mean_ap)}
    out.update({f"rank{r}": float(cmc[r - 1]) for r in ranks if r <= len(cmc)})
    return out
