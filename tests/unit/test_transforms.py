"""Golden numbers for transforms and distributions, computed through dreamer_core's functions.

Each golden value was computed independently of dreamer_core, with numpy (or math) in float64;
the note above each test says how. Tolerance 1e-6 relative unless the test says otherwise.
"""

import math

import numpy as np
import pytest
import torch

from dreamer_core.config import load_agent_config
from dreamer_core.distributions import (
    actor_mean_std,
    categorical_kl,
    free_bits,
    twohot_bins,
    twohot_decode,
    twohot_encode,
    twohot_loss,
    unimix_probs,
)
from dreamer_core.models.actor_critic import slow_update
from dreamer_core.runners.train_ratio import TrainRatio
from dreamer_core.transforms import symexp, symlog

torch.set_num_threads(1)
F64 = torch.float64


# numpy: sign(x)·log1p(|x|).
@pytest.mark.parametrize(("x", "expected"), [(-9, -2.3025851), (1, 0.6931472), (99, 4.6051702), (1e6, 13.8155116)])
def test_symlog_golden(x, expected):
    assert symlog(torch.tensor(x, dtype=F64)).item() == pytest.approx(expected, rel=1e-6)


def test_symlog_symexp_round_trip():
    x = torch.linspace(-20, 20, 4001, dtype=F64)
    assert torch.allclose(symexp(symlog(x)), x, rtol=1e-12, atol=1e-12)
    assert torch.allclose(symlog(symexp(x)), x, rtol=1e-12, atol=1e-12)
    x32 = x.float()
    # float32: symlog∘symexp is accurate to a few ulps of the value in symlog space.
    assert (symlog(symexp(x32)) - x32).abs().max().item() < 5e-6


# numpy: x = symlog(v); i = the last bin of linspace(−20, 20, 255) at or below x; weight of bin i+1 is
# (x − b_i) / (b_{i+1} − b_i), of bin i one minus that.
@pytest.mark.parametrize(
    ("value", "bins", "weights"),
    [(0.1, (127, 128), (0.3947804, 0.6052196)), (1.0, (131, 132), (0.5985154, 0.4014846)),
     (-3.0, (118, 119), (0.8029692, 0.1970308))],
)
def test_twohot_encode_golden(value, bins, weights):
    target = twohot_encode(torch.tensor([value], dtype=F64), twohot_bins(255, dtype=F64))[0]
    assert target.sum().item() == pytest.approx(1.0, rel=1e-9)
    nonzero = torch.nonzero(target).flatten().tolist()
    assert nonzero == list(bins)
    assert target[bins[0]].item() == pytest.approx(weights[0], rel=1e-6)
    assert target[bins[1]].item() == pytest.approx(weights[1], rel=1e-6)


@pytest.mark.parametrize(("value", "bin_index"), [(1e9, 254), (0.0, 127), (-1e9, 0)])
def test_twohot_edges_and_centre(value, bin_index):
    target = twohot_encode(torch.tensor([value], dtype=F64), twohot_bins(255, dtype=F64))[0]
    assert target[bin_index].item() == pytest.approx(1.0, abs=1e-9)
    assert target.sum().item() == pytest.approx(1.0, abs=1e-12)


def test_twohot_decode_inverts_encode():
    bins = twohot_bins(255, dtype=F64)
    values = torch.tensor([-1e6, -300.0, -3.0, -0.25, 0.0, 0.1, 1.0, 42.0, 5e7], dtype=F64)
    target = twohot_encode(values, bins)
    # Logits whose softmax is exactly the target (zero weights get -inf).
    decoded = twohot_decode(torch.log(target), bins)
    assert torch.allclose(decoded.to(F64), values, rtol=1e-5)


# Cross-entropy of uniform logits over 255 bins against any target is ln 255 = 5.5412635 (math.log).
def test_twohot_uniform_logits():
    bins = twohot_bins(255)
    logits = torch.zeros(4, 255)
    loss = twohot_loss(logits, torch.tensor([0.0, 0.1, -3.0, 1e9]), bins)
    assert torch.allclose(loss, torch.full((4,), 5.5412635), rtol=1e-6)
    assert twohot_decode(logits, bins).abs().max().item() == 0.0


# numpy: p = 0.99·softmax([10, 0, 0, 0]) + 0.01/4; KL(p‖uniform) = Σ p·ln(4p) = 1.3330810.
def test_unimix_and_kl_golden():
    probs = unimix_probs(torch.tensor([10.0, 0.0, 0.0, 0.0], dtype=F64), 0.01)
    assert probs.tolist() == pytest.approx([0.9923652, 0.0025449, 0.0025449, 0.0025449], abs=5e-8)
    uniform = torch.full((4,), 0.25, dtype=F64)
    assert categorical_kl(probs, uniform).item() == pytest.approx(1.3330810, rel=1e-6)


def test_free_bits_constant_and_no_gradient_below_one_nat():
    kl = torch.tensor([0.3, 0.99, 1.5], requires_grad=True)
    clipped = free_bits(kl, 1.0)
    assert clipped.tolist() == pytest.approx([1.0, 1.0, 1.5])
    clipped.sum().backward()
    assert kl.grad.tolist() == [0.0, 0.0, 1.0]


# math: 0.9·sigmoid(2) + 0.1 = 0.8927174.
def test_actor_std_at_zero_logit():
    _, std = actor_mean_std(torch.zeros(1, dtype=F64), torch.zeros(1, dtype=F64), 0.1, 1.0)
    assert std.item() == pytest.approx(0.9 / (1 + math.exp(-2)) + 0.1, rel=1e-9)
    assert std.item() == pytest.approx(0.8927174, rel=1e-6)


# Absorbed fraction after n EMA updates at rate 0.02 is 1 − 0.98^n.
@pytest.mark.parametrize(("updates", "absorbed"), [(1, 0.02), (10, 0.1829272), (100, 0.8673804)])
def test_slow_critic_absorbs_step_change(updates, absorbed):
    slow, fast = torch.nn.Linear(1, 1).double(), torch.nn.Linear(1, 1).double()
    for module, value in ((slow, 0.0), (fast, 1.0)):
        for p in module.parameters():
            torch.nn.init.constant_(p, value)
    fraction = load_agent_config("s").slow_critic_fraction
    for _ in range(updates):
        slow_update(slow, fast, fraction)
    assert slow.weight.item() == pytest.approx(absorbed, rel=1e-6)


# γ = 1 − 1/333 = 0.996997, γ^15 = 0.9558896; train ratio 512 / (16·64) = 0.5 updates per collected step.
def test_discount_and_train_ratio_golden():
    config = load_agent_config("s")
    assert config.gamma == pytest.approx(0.996997, rel=1e-6)
    assert config.gamma**config.horizon == pytest.approx(0.9558896, rel=1e-6)
    assert TrainRatio(config).updates_per_step == pytest.approx(0.5, rel=1e-12)


def test_bins_are_symmetric_linspace():
    bins = twohot_bins(255).numpy()
    assert np.allclose(bins, np.linspace(-20, 20, 255), atol=1e-6)
