"""Label schemes, triplet masking, batch sampling and settings of re-ID training (no images needed)."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import torch

from augreid.errors import ConfigError
from augreid.reid.config import resolve_config
from augreid.reid.losses import SyntheticAwareTripletLoss, SyntheticLabelCrossEntropy
from augreid.reid.sampler import MixedBatchSampler

pytestmark = pytest.mark.usefixtures("one_torch_thread")


LN2 = math.log(2.0)
# softmax of these logits is exactly [1/4, 1/2, 1/4]
LOGITS = torch.log(torch.tensor([[1.0, 2.0, 1.0]]))


def ce(scheme: str, label: int, synthetic: bool, eps: float = 0.3, real_eps: float = 0.0) -> float:
    loss = SyntheticLabelCrossEntropy(3, scheme, label_smoothing=eps, real_label_smoothing=real_eps)
    return loss(LOGITS, torch.tensor([label]), torch.tensor([synthetic])).item()


@pytest.mark.parametrize("scheme", ["same-id", "lsro", "smoothed-id"])
def test_real_images_get_the_plain_target_whatever_the_scheme(scheme):
    assert ce(scheme, 1, False) == pytest.approx(LN2)  # -log 1/2
    assert ce(scheme, 0, False) == pytest.approx(2 * LN2)  # -log 1/4


def test_same_id_synthetic_equals_real():
    assert ce("same-id", 1, True) == pytest.approx(LN2)
    # with smoothing on real images, a same-id synthetic image gets that same smoothing:
    # q = [0.1, 0.8, 0.1] for eps 0.3 -> 0.2 ln4/2*2... = 0.1*2ln2*2 + 0.8*ln2 = 1.2 ln2
    assert ce("same-id", 1, True, real_eps=0.3) == pytest.approx(1.2 * LN2)


def test_lsro_synthetic_is_uniform_over_all_ids():
    # -(1/3)(log 1/4 + log 1/2 + log 1/4) = (1/3)(2 + 1 + 2) ln2, whatever the label
    assert ce("lsro", 1, True) == pytest.approx(5 / 3 * LN2)
    assert ce("lsro", 0, True) == pytest.approx(5 / 3 * LN2)


def test_smoothed_id_synthetic_uses_its_own_epsilon():
    # eps 0.3, K 3: q = 0.7 onehot + 0.1 = [0.1, 0.8, 0.1]; loss = 0.1*2ln2 + 0.8 ln2 + 0.1*2ln2 = 1.2 ln2
    assert ce("smoothed-id", 1, True, eps=0.3) == pytest.approx(1.2 * LN2)
    # eps 1 is LSRO
    assert ce("smoothed-id", 1, True, eps=1.0) == pytest.approx(ce("lsro", 1, True))


def test_batch_mean_mixes_real_and_synthetic_rows():
    loss = SyntheticLabelCrossEntropy(3, "lsro")
    value = loss(LOGITS.repeat(2, 1), torch.tensor([1, 1]), torch.tensor([False, True]))
    assert value.item() == pytest.approx((LN2 + 5 / 3 * LN2) / 2)


def test_without_synthetic_flags_it_is_torchreid_cross_entropy():
    from torchreid.reid.losses import CrossEntropyLoss

    torch.manual_seed(0)
    logits, labels = torch.randn(8, 11), torch.randint(0, 11, (8,))
    ours = SyntheticLabelCrossEntropy(11, "smoothed-id", label_smoothing=0.5, real_label_smoothing=0.1)
    theirs = CrossEntropyLoss(11, eps=0.1, use_gpu=False, label_smooth=True)
    assert ours(logits, labels).item() == pytest.approx(theirs(logits, labels).item(), rel=1e-6)


def test_soft_targets_are_distributions_and_give_gradients():
    loss = SyntheticLabelCrossEntropy(5, "smoothed-id", label_smoothing=0.2, real_label_smoothing=0.1)
    q = loss.target_distribution(torch.tensor([0, 4, 2]), torch.tensor([True, False, True]), torch.zeros(1))
    assert torch.allclose(q.sum(1), torch.ones(3))
    assert q[0, 0].item() == pytest.approx(0.8 + 0.04) and q[1, 4].item() == pytest.approx(0.9 + 0.02)
    logits = torch.zeros(3, 5, requires_grad=True)
    loss(logits, torch.tensor([0, 4, 2]), torch.tensor([True, False, True])).backward()
    # d/dz of mean CE = (softmax - q) / B
    assert torch.allclose(logits.grad, (torch.full((3, 5), 0.2) - q) / 3, atol=1e-6)


def test_unknown_scheme_is_refused():
    with pytest.raises(ValueError, match="unknown label scheme"):
        SyntheticLabelCrossEntropy(3, "pseudo")


def test_triplet_lsro_leaves_synthetic_images_out():
    # 1-D features: a, b (pid 0) at 0, 1; c, d (pid 1) at 3, 4; synthetic e (pid 0) at 10.
    feats = torch.tensor([[0.0], [1.0], [3.0], [4.0], [10.0]])
    pids = torch.tensor([0, 0, 1, 1, 0])
    synth = torch.tensor([False, False, False, False, True])
    # with e: hardest positives a->e 10, b->e 9, e->a 10; negatives 3, 2, 6 -> (7.3 + 7.3 + 0 + 0 + 4.3) / 5
    kept = SyntheticAwareTripletLoss(0.3, exclude_synthetic=False)(feats, pids, synth)
    assert kept.item() == pytest.approx(18.9 / 5, abs=1e-4)
    dropped = SyntheticAwareTripletLoss(0.3, exclude_synthetic=True)(feats, pids, synth)
    assert dropped.item() == pytest.approx(0.0, abs=1e-4)


def _items(real_pids, synth_pids):
    items = [(f"r{i}.jpg", pid, 1, 0) for i, pid in enumerate(real_pids)]
    items += [(f"s{i}.jpg", pid, 7, 1) for i, pid in enumerate(synth_pids)]
    return items


def test_synthetic_images_come_on_top_of_the_real_batch():
    random.seed(0)
    items = _items([p for p in range(10) for _ in range(4)], list(range(10)) * 2)
    real = [i for i, x in enumerate(items) if x[3] == 0]
    synth = [i for i, x in enumerate(items) if x[3] == 1]
    sampler = MixedBatchSampler(items, real, synth, 8, 2)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 40 // 8  # an epoch is one pass over the real images
    assert all(len(b) == 10 and sum(items[i][3] for i in b) == 2 for b in batches)
    seen_real = [i for b in batches for i in b if items[i][3] == 0]
    assert len(seen_real) == len(set(seen_real)) == 40  # each real image once per epoch


def test_real_only_and_augmented_arms_take_the_same_steps_with_the_same_real_batches():
    items = _items([p for p in range(10) for _ in range(4)], list(range(10)) * 2)
    real = [i for i, x in enumerate(items) if x[3] == 0]
    synth = [i for i, x in enumerate(items) if x[3] == 1]
    arms = {}
    for name, extra, pool in (("baseline", 0, []), ("augmented", 4, synth)):
        random.seed(3)
        sampler = MixedBatchSampler(items, real, pool, 8, extra, identity=True, num_instances=4, iters=25)
        arms[name] = [[i for i in b if items[i][3] == 0] for b in sampler]
    assert len(arms["baseline"]) == len(arms["augmented"]) == 25  # five passes
    assert all(len(b) == 8 for batches in arms.values() for b in batches)
    # The synthetic draws have their own generator: the real batches stay the same, pass after pass.
    assert arms["baseline"] == arms["augmented"]


def test_identity_batches_take_synthetic_images_of_their_identities():
    random.seed(1)
    items = _items([p for p in range(8) for _ in range(4)], [p for p in range(8) for _ in range(3)])
    real = [i for i, x in enumerate(items) if x[3] == 0]
    synth = [i for i, x in enumerate(items) if x[3] == 1]
    sampler = MixedBatchSampler(items, real, synth, 12, 4, identity=True, num_instances=4)
    for batch in sampler:
        real_pids = {items[i][1] for i in batch if items[i][3] == 0}
        synth_pids = {items[i][1] for i in batch if items[i][3] == 1}
        assert len(real_pids) == 3 and synth_pids <= real_pids and len(batch) == 16


def test_a_fixed_number_of_steps_spans_several_passes_or_part_of_one():
    random.seed(2)
    items = _items(list(range(20)), [0, 1])
    short = MixedBatchSampler(items, range(20), [20, 21], 4, 1, iters=2)
    assert len(short) == 2 and len(list(short)) == 2
    long = MixedBatchSampler(items, range(20), [20, 21], 4, 1, iters=12)  # 5 batches per pass: 2.4 passes
    batches = list(long)
    assert len(batches) == len(long) == 12 and all(len(b) == 5 for b in batches)
    first_pass = [i for b in batches[:5] for i in b[:4]]
    assert sorted(first_pass) == list(range(20))  # every pass is a whole shuffled pass
    with pytest.raises(ConfigError, match="no full batch"):
        MixedBatchSampler(items, range(20), [], 64)


def test_config_defaults_overrides_and_round_trip(tmp_path):
    config = resolve_config(overrides={"epochs": 3, "lr": 1, "synthetic": "synth", "synthetic_per_batch": 4})
    assert config.model == "mobilenetv2_x1_0" and config.method == "bot" and config.pretrained == "auto"
    assert config.epochs == 3 and config.lr == 1.0
    assert config.synthetic == str((Path.cwd() / "synth").resolve())  # options are relative to the cwd
    path = tmp_path / "config.toml"
    path.write_text(config.to_toml())
    assert resolve_config(path) == config


def test_config_errors_are_listed_together(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('epochs = "ten"\nlabel_scheme = "lsro"\nbogus = 1\n')
    with pytest.raises(ConfigError) as err:
        resolve_config(path)
    assert "epochs: expected int" in str(err.value) and "bogus: unknown key" in str(err.value)
    with pytest.raises(ConfigError, match="synthetic_ratio: unknown key.*synthetic_per_batch"):
        resolve_config(overrides={"synthetic_ratio": 0.2})  # the old key points to the new one
    with pytest.raises(ConfigError, match="label_scheme: 'pseudo' is not one of"):
        resolve_config(overrides={"label_scheme": "pseudo"})
    with pytest.raises(ConfigError) as err:
        resolve_config(overrides={"optimizer": "lion", "device": "tpu", "stepsize": [0]})
    assert all(f"{key}: " in str(err.value) for key in ("optimizer", "device", "stepsize"))
    with pytest.raises(ConfigError) as err:
        resolve_config(overrides={"lr": float("nan"), "height": 7, "threads": -2, "device": "banana", "method": "x"})
    assert all(f"{key}: " in str(err.value) for key in ("lr", "height/width", "threads", "device", "method"))
    with pytest.raises(ConfigError, match="lr: inf must be a finite number"):
        resolve_config(overrides={"lr": float("inf")})


def test_pretrained_names_are_not_made_into_paths():
    for name in ("auto", "imagenet", "none"):
        assert resolve_config(overrides={"pretrained": name}).pretrained == name
    assert resolve_config(overrides={"pretrained": "w.pth"}).pretrained == str((Path.cwd() / "w.pth").resolve())
