"""Batch sampling for real + synthetic training.

``MixedBatchSampler`` yields index batches made of ``batch_size - num_secondary``
images from a *primary* pool and ``num_secondary`` from a *secondary* pool:

* without ``--synthetic-ratio`` the primary pool is the whole union and nothing
  is secondary (real and synthetic images are drawn alike);
* with it, the primary pool is the real images and the secondary pool the
  synthetic ones, so every batch holds exactly ``num_secondary`` synthetic images.

An epoch is one pass over the primary pool. For triplet losses the primary
batches come from torchreid's ``RandomIdentitySampler`` (P identities x K
images) and the synthetic images are taken, where possible, from identities
already in the batch so that they act as extra positives. Randomness comes from
Python's ``random`` module, like torchreid's samplers, so ``seed_everything``
makes batches reproducible.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Protocol

from torch.utils.data import Sampler
from torchreid.reid.data.sampler import RandomIdentitySampler

from augreid.errors import ConfigError


def synthetic_per_batch(batch_size: int, ratio: float | None, num_instances: int, identity: bool) -> int:
    """How many synthetic images a batch holds for ``ratio`` (rounded; identity batches keep whole K groups)."""
    if ratio is None or ratio == 0:
        return 0
    step = num_instances if identity else 1
    count = step * round(ratio * batch_size / step)
    count = max(step, count)  # a positive ratio never rounds down to no synthetic image
    if batch_size - count < (num_instances if identity else 1):
        raise ConfigError(
            f"synthetic_ratio {ratio} leaves no room for real images in a batch of {batch_size}"
            + (f" (triplet batches need whole groups of num_instances={num_instances})" if identity else "")
        )
    return count


class MixedBatchSampler(Sampler[list[int]]):
    """Index batches of primary images topped up with secondary (synthetic) ones."""

    def __init__(
        self,
        items: Sequence[tuple],
        primary: Sequence[int],
        secondary: Sequence[int],
        batch_size: int,
        num_secondary: int = 0,
        identity: bool = False,
        num_instances: int = 4,
        max_batches: int | None = None,
    ) -> None:
        self.items = items
        self.primary = list(primary)
        self.secondary = list(secondary)
        self.batch_size = batch_size
        self.num_secondary = num_secondary if self.secondary else 0
        self.num_primary = batch_size - self.num_secondary
        self.identity = identity
        self.num_instances = num_instances
        self.max_batches = max_batches
        if self.num_primary < 1:
            raise ConfigError(f"a batch of {batch_size} has no room for real images")
        if identity:
            pids = {items[i][1] for i in self.primary}
            needed = self.num_primary // num_instances
            if len(pids) < needed:
                raise ConfigError(
                    f"triplet batches of {self.num_primary} images need {needed} identities, the data has {len(pids)}"
                )
        if len(self) == 0:
            raise ConfigError(
                f"batch size {batch_size} is larger than the {len(self.primary)} training images: no full batch"
            )
        self.secondary_by_pid: dict[int, list[int]] = defaultdict(list)
        for index in self.secondary:
            self.secondary_by_pid[items[index][1]].append(index)

    def _primary_order(self) -> list[int]:
        if not self.identity:
            order = list(self.primary)
            random.shuffle(order)
            return order
        subset = [self.items[i] for i in self.primary]
        sampler = RandomIdentitySampler(subset, self.num_primary, self.num_instances)
        return [self.primary[i] for i in sampler]

    def _num_primary_items(self) -> int:
        if not self.identity:
            return len(self.primary)
        # torchreid's own estimate of an identity-sampled epoch (every pid padded to K, rounded down to K).
        counts: dict[int, int] = defaultdict(int)
        for i in self.primary:
            counts[self.items[i][1]] += 1
        return sum(max(n, self.num_instances) // self.num_instances * self.num_instances for n in counts.values())

    def __len__(self) -> int:
        batches = self._num_primary_items() // self.num_primary
        return batches if self.max_batches is None else min(batches, self.max_batches)

    def __iter__(self) -> Iterator[list[int]]:
        order = self._primary_order()
        pool: list[int] = []
        limit = len(self)
        for number, start in enumerate(range(0, len(order) - self.num_primary + 1, self.num_primary)):
            if number == limit:
                return
            batch = order[start : start + self.num_primary]
            if self.num_secondary:
                batch += self._secondary_for(batch, pool)
            yield batch

    def _secondary_for(self, batch: list[int], pool: list[int]) -> list[int]:
        """Synthetic images for one batch: same identities first (triplet), then the shuffled pool."""
        chosen: list[int] = []
        if self.identity:
            candidates = [i for pid in {self.items[b][1] for b in batch} for i in self.secondary_by_pid.get(pid, ())]
            random.shuffle(candidates)
            chosen = candidates[: self.num_secondary]
        while len(chosen) < self.num_secondary:
            if not pool:
                pool.extend(self.secondary)
                random.shuffle(pool)
            index = pool.pop()
            if index not in chosen or len(self.secondary) <= len(chosen):
                chosen.append(index)
        return chosen


class SizedBatches(Protocol):
    """Index batches with a length: a batch sampler (torch's ``Sampler`` declares no ``__len__``) or a list."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[list[int]]: ...


class RankBatches(Sampler[list[int]]):
    """Rank ``rank``'s share of a batch sampler: batches ``rank, rank + world, ...``.

    Every rank draws the same seeded batch sequence, so together the ranks see
    each batch once, as one process would, ``world`` batches per step.
    """

    def __init__(self, batches: SizedBatches, rank: int, world: int) -> None:
        self.batches, self.rank, self.world = batches, rank, world

    def __len__(self) -> int:
        return len(self.batches) // self.world

    def __iter__(self) -> Iterator[list[int]]:
        limit = len(self) * self.world  # equal step counts on every rank, or DDP waits forever
        for number, batch in enumerate(self.batches):
            if number >= limit:
                return
            if number % self.world == self.rank:
                yield batch
