"""PG2 networks: parameter counts against the paper's layout, forward passes, losses."""

from __future__ import annotations

import pytest
import torch

from generators.pg2 import load_preset
from generators.pg2.losses import discriminator_loss, masked_l1, pose_mask_l1
from generators.pg2.model import G1, G2, PG2, Discriminator, count_parameters


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _conv(cin: int, cout: int, k: int = 3) -> int:
    return k * k * cin * cout + cout


def expected_g1_parameters(m) -> int:
    """G1 as the paper describes it, counted independently of the module code."""
    n, h, z = m.blocks, m.hidden, m.z_dim
    bottom = (m.image_size[0] // 2 ** (n - 1)) * (m.image_size[1] // 2 ** (n - 1))
    total = _conv(3 + 18, h)
    total += sum(2 * _conv(h * (i + 1), h * (i + 1)) for i in range(n))  # residual blocks
    total += sum(_conv(h * (i + 1), h * (i + 2)) for i in range(n - 1))  # stride-2 convs
    total += (h * n * bottom) * z + z + z * (h * bottom) + h * bottom  # FC bottleneck
    channels = h
    for i in range(n):
        channels += h * (n - i)
        total += 2 * _conv(channels, channels)
        if i < n - 1:
            total += _conv(channels, h * (n - i - 1), k=1)
            channels = h * (n - i - 1)
    return total + _conv(2 * h, 3)


def expected_g2_parameters(m) -> int:
    n, h = m.blocks - 2, m.g2_hidden
    total = _conv(6, h) + sum(2 * _conv(h * (i + 1), h * (i + 1)) for i in range(n))
    total += sum(_conv(h * (i + 1), h * (i + 2)) for i in range(n - 1))
    for i in range(n):
        total += _conv((h * n if i == 0 else h) + h * (n - i), h) + _conv(h, h)
    return total + _conv(h, 3)


def expected_d_parameters(m) -> int:
    total, cin = 0, 6
    for i in range(m.d_layers):
        cout = m.d_hidden * 2**i
        total += 25 * cin * cout + (cout if i == 0 else 2 * cout)  # bias on layer 0, batch norm after
        cin = cout
    pixels = (m.image_size[0] // 2**m.d_layers) * (m.image_size[1] // 2**m.d_layers)
    return total + cin * pixels + 1


@pytest.mark.parametrize("preset", ["cpu-small", "paper-128x64", "fashion-256x256"])
def test_parameter_counts_and_shapes(preset):
    m = load_preset(preset).model
    h, w = m.image_size
    with torch.device("meta"):  # shapes and counts without allocating the paper-size weights
        g1, g2, d = G1(m), G2(m), Discriminator(m)
        assert count_parameters(g1) == expected_g1_parameters(m)
        assert count_parameters(g2) == expected_g2_parameters(m)
        assert count_parameters(d) == expected_d_parameters(m)
        cond, maps = torch.empty(2, 3, h, w), torch.empty(2, 18, h, w)
        coarse = g1(cond, maps)
        assert coarse.shape == (2, 3, h, w)
        assert g2(coarse, cond).shape == (2, 3, h, w)
        assert d(cond, coarse).shape == (2,)
        assert g1.fc_down.out_features == 64


def test_paper_g1_matches_the_paper_layout():
    m = load_preset("paper-128x64").model
    with torch.device("meta"):
        g1 = G1(m)
    assert [b.body[0].in_channels for b in g1.encoder.blocks] == [128, 256, 384, 512, 640]
    assert g1.bottom == (8, 4) and g1.fc_down.in_features == 640 * 32
    assert not any(isinstance(x, (torch.nn.BatchNorm2d, torch.nn.Dropout)) for x in g1.modules())
    assert count_parameters(g1) == expected_g1_parameters(m)


def test_cpu_small_runs_forward_for_real():
    m = load_preset("cpu-small").model
    torch.manual_seed(0)
    net = PG2(m)
    coarse, refined = net(torch.rand(2, 3, *m.image_size) * 2 - 1, torch.rand(2, 18, *m.image_size))
    assert coarse.shape == refined.shape == (2, 3, *m.image_size)
    assert torch.isfinite(refined).all() and coarse.abs().mean() > 0
    assert torch.equal(coarse, refined)  # G2's difference map starts at zero: stage II starts from G1
    diff = net.g2(coarse, torch.zeros_like(coarse))
    assert diff.abs().max() == 0


def test_losses():
    pred, target = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :] = 1
    assert pose_mask_l1(pred, target, mask).item() == pytest.approx(1.5)  # |1| * (1 + M), half the pixels in M
    assert masked_l1(pred, target, mask).item() == pytest.approx(1.0)
    confident = discriminator_loss(torch.tensor([20.0]), torch.tensor([-20.0]))
    assert confident.item() < 1e-6 < discriminator_loss(torch.tensor([-1.0]), torch.tensor([1.0])).item()
