"""Batch sampling for real + synthetic training.

``MixedBatchSampler`` yields index batches of ``num_primary`` images from a
*primary* pool (the real images) topped up with ``num_secondary`` images from a
*secondary* pool (the synthetic ones). Synthetic images are added, never
swapped for real ones: a real-only run and a real + synthetic run with the same
``num_primary`` take the same number of steps with the same real images per
batch (CamStyle's design), so the arms of a comparison differ only in the
extra images.

An epoch is one pass over the primary pool, or exactly ``iters`` batches when
given (passes follow each other, each one freshly shuffled; the last one is
cut short): runs on different amounts of data then take the same steps. For
triplet losses the primary batches come from torchreid's
``RandomIdentitySampler`` (P identities x K images) and the synthetic images
are taken, where possible, from identities already in the batch so that they
act as extra positives. The real batches draw from Python's ``random`` module,
like torchreid's samplers, so ``seed_everything`` makes them reproducible; the
synthetic draws use their own generator seeded with ``secondary_seed``, so they
never shift the global stream: a real-only arm and a real + synthetic arm with
the same seed get the same real index batches, pass after pass. (Per-image
random augmentations run in the loader workers and are not paired this way.)
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Protocol

from torch.utils.data import Sampler
from torchreid.reid.data.sampler import RandomIdentitySampler

from augreid.errors import ConfigError


class MixedBatchSampler(Sampler[list[int]]):
    """Index batches of ``num_primary`` primary images plus ``num_secondary`` secondary (synthetic) ones."""

    def __init__(
        self,
        items: Sequence[tuple],
        primary: Sequence[int],
        secondary: Sequence[int],
        num_primary: int,
        num_secondary: int = 0,
        identity: bool = False,
        num_instances: int = 4,
        iters: int | None = None,
        secondary_seed: int = 0,
    ) -> None:
        self.items = items
        self.primary = list(primary)
        self.secondary = list(secondary)
        self.num_primary = num_primary
        self.num_secondary = num_secondary if self.secondary else 0
        self.identity = identity
        self.num_instances = num_instances
        self.iters = iters
        self.secondary_rng = random.Random(secondary_seed)
        if self.num_primary < 1:
            raise ConfigError(f"a batch of {num_primary} real images is empty")
        if identity:
            pids = {items[i][1] for i in self.primary}
            needed = self.num_primary // num_instances
            if len(pids) < needed:
                raise ConfigError(
                    f"triplet batches of {self.num_primary} images need {needed} identities, the data has {len(pids)}"
                )
        if self._batches_per_pass() == 0:
            raise ConfigError(
                f"batch size {num_primary} is larger than the {len(self.primary)} training images: no full batch"
            )
        self.secondary_by_pid: dict[int, list[int]] = defaultdict(list)
        for index in self.secondary:
            self.secondary_by_pid[items[index][1]].append(index)

    @property
    def batch_size(self) -> int:
        return self.num_primary + self.num_secondary

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

    def _batches_per_pass(self) -> int:
        return self._num_primary_items() // self.num_primary

    def __len__(self) -> int:
        return self._batches_per_pass() if self.iters is None else self.iters

    def _primary_batches(self) -> Iterator[list[int]]:
        """Full primary batches of one pass, then (with ``iters``) of the next passes, endlessly."""
        while True:
            order = self._primary_order()
            batches = [
                order[s : s + self.num_primary] for s in range(0, len(order) - self.num_primary + 1, self.num_primary)
            ]
            yield from batches[: self._batches_per_pass()]
            if self.iters is None:
                return

    def __iter__(self) -> Iterator[list[int]]:
        pool: list[int] = []
        for number, batch in enumerate(self._primary_batches()):
            if number == len(self):
                return
            if self.num_secondary:
                batch = batch + self._secondary_for(batch, pool)
            yield batch

    def _secondary_for(self, batch: list[int], pool: list[int]) -> list[int]:
        """Synthetic images for one batch: same identities first (triplet), then the shuffled pool."""
        chosen: list[int] = []
        if self.identity:
            candidates = [i for pid in {self.items[b][1] for b in batch} for i in self.secondary_by_pid.get(pid, ())]
            self.secondary_rng.shuffle(candidates)
            chosen = candidates[: self.num_secondary]
        while len(chosen) < self.num_secondary:
            if not pool:
                pool.extend(self.secondary)
                self.secondary_rng.shuffle(pool)
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
