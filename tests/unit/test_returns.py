"""Golden λ-return and return-normaliser numbers, computed through dreamer_core.algorithms.returns.

Each golden value was computed independently of dreamer_core, with numpy in float64; the note
above each test says how. Tolerance 1e-6 relative.
"""

import numpy as np
import pytest
import torch

from dreamer_core.algorithms.returns import ReturnNormaliser, lambda_return

torch.set_num_threads(1)
F64 = torch.float64


def _returns(r, v, c, gamma, lam):
    # Index 0 of r is the (unused) reward on entering state 0.
    t = lambda x: torch.tensor(x, dtype=F64)  # noqa: E731
    return lambda_return(t(r), t(v), t(c), gamma, lam).tolist()


# numpy float64 backward recursion R_t = r[t+1] + γ c[t+1] ((1−λ) v[t+1] + λ R_{t+1}), R_H = v[H];
# this is rlax.lambda_returns with r_t = r[1:], discount_t = γ·c[1:], v_t = v[1:].
@pytest.mark.parametrize(
    ("cont", "gamma", "lam", "expected"),
    [
        ([1, 1, 1, 1], 0.99, 0.95, [7.4053426, 6.75794, 4.98]),
        ([1, 1, 0, 1], 0.99, 0.95, [2.9305, 2.0, 4.98]),
        ([1, 1, 1, 1], 1.0, 0.95, [7.53375, 6.825, 5.0]),
        ([1, 1, 1, 1], 0.99, 1.0, [7.860898, 6.9302, 4.98]),
        ([1, 1, 1, 1], 0.99, 0.0, [1.99, 3.485, 4.98]),
    ],
)
def test_lambda_return_golden(cont, gamma, lam, expected):
    got = _returns([0, 1, 2, 3], [0, 1, 1.5, 2], cont, gamma, lam)
    assert got == pytest.approx(expected, rel=1e-6)


# Same numpy recursion on other rewards and values.
def test_lambda_return_golden_other_rewards_and_values():
    got = _returns([0, 0.7, 0.5, 0.4], [1.2, 1.0, 0.8, 0.6], [1, 1, 1, 1], 0.99, 0.95)
    assert got == pytest.approx([2.136227, 1.474457, 0.994], rel=1e-6)


def test_lambda_return_batched_matches_single():
    rng = np.random.default_rng(0)
    r, v = rng.normal(size=(16, 5)), rng.normal(size=(16, 5))
    c = (rng.uniform(size=(16, 5)) > 0.2).astype(float)
    batched = lambda_return(torch.tensor(r), torch.tensor(v), torch.tensor(c), 0.99, 0.95)
    for i in range(5):
        single = lambda_return(torch.tensor(r[:, i]), torch.tensor(v[:, i]), torch.tensor(c[:, i]), 0.99, 0.95)
        assert torch.allclose(batched[:, i], single)


# numpy float64: lo ← 0.99·lo + 0.01·percentile(linspace(0, 100, 101), 5), hi likewise with 95, from
# lo = hi = 0; percentiles by numpy's default linear interpolation (what torch.quantile does).
@pytest.mark.parametrize(("updates", "lo", "scale"), [(1, 0.05, 1.0), (2, 0.0995, 1.791), (10, 0.47809, 8.605613),
                                                      (100, 3.169838, 57.057089)])
def test_return_normaliser_golden(updates, lo, scale):
    norm = ReturnNormaliser(rate=0.01, low=5, high=95).double()
    returns = torch.linspace(0, 100, 101, dtype=F64)
    for _ in range(updates):
        norm.update(returns)
    assert norm.lo.item() == pytest.approx(lo, rel=1e-6)
    assert norm.scale.item() == pytest.approx(scale, rel=1e-6)


def test_return_normaliser_small_returns_keep_unit_scale():
    norm = ReturnNormaliser()
    for _ in range(50):
        norm.update(torch.linspace(0, 0.5, 64))
    assert norm.scale.item() == 1.0


# numpy.percentile([1, 2, 3, 4, 100], [5, 95]) = [1.2, 80.8].
def test_percentiles_by_linear_interpolation():
    # With rate 1 the estimates are exactly the percentiles of the last update.
    norm = ReturnNormaliser(rate=1.0, low=5, high=95).double()
    norm.update(torch.tensor([1.0, 2.0, 3.0, 4.0, 100.0], dtype=F64))
    assert norm.lo.item() == pytest.approx(1.2, rel=1e-6)
    assert norm.hi.item() == pytest.approx(80.8, rel=1e-6)
