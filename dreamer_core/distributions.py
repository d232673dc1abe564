"""Output distributions of DreamerV3 as small pure functions on tensors.

No ``torch.distributions`` objects: the same functions run inside the exported
ONNX policy tick, and explicit noise inputs keep sampling reproducible.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dreamer_core.transforms import symexp, symlog


def _full(x: torch.Tensor) -> torch.Tensor:
    """At least float32 (losses and softmaxes stay out of bf16), float64 kept for exact checks."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


# --- two-hot regression over symlog bins (reward and critic heads) -----------------------------
def twohot_bins(num_bins: int = 255, low: float = -20.0, high: float = 20.0, device=None,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Bin centres in symlog space, ``linspace(low, high, num_bins)``.

    Symmetric ranges are made exactly antisymmetric (rounding in linspace is not), so that
    uniform logits decode to exactly 0.
    """
    bins = torch.linspace(low, high, num_bins, device=device, dtype=dtype)
    return (bins - bins.flip(0)) / 2 if low == -high else bins


def twohot_encode(value: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Two-hot target [..., K] for raw values: weight on the two neighbouring bins of symlog(value),
    linear in symlog space; values beyond the last bins put all weight on the edge bin."""
    x = symlog(value).clamp(bins[0], bins[-1])
    # Index of the highest bin <= x (the right neighbour is the next one, clipped at the edge).
    below = (torch.searchsorted(bins, x.contiguous(), right=True) - 1).clamp(0, len(bins) - 1)
    above = (below + 1).clamp(max=len(bins) - 1)
    lo, hi = bins[below], bins[above]
    span = torch.where(above == below, torch.ones_like(lo), hi - lo)
    w_above = torch.where(above == below, torch.zeros_like(x), (x - lo) / span)
    target = torch.zeros((*x.shape, len(bins)), dtype=x.dtype, device=x.device)
    target.scatter_(-1, below.unsqueeze(-1), (1 - w_above).unsqueeze(-1))
    return target.scatter_add_(-1, above.unsqueeze(-1), w_above.unsqueeze(-1))


def twohot_decode(logits: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Predicted raw value symexp(Σ p_i b_i) of two-hot logits [..., K]."""
    probs = torch.softmax(_full(logits), -1)
    # Sum the mirrored halves of the bins separately so uniform logits decode to exactly 0.
    half = len(bins) // 2
    upper = (probs[..., -half:] * bins[-half:]).sum(-1)
    lower = (probs[..., :half].flip(-1) * bins[:half].flip(-1)).sum(-1)
    middle = probs[..., half] * bins[half] if len(bins) % 2 else 0.0
    return symexp(lower + upper + middle)


def twohot_loss(logits: torch.Tensor, target_value: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of two-hot logits [..., K] against the two-hot encoding of raw targets [...]."""
    target = twohot_encode(_full(target_value.detach()), bins)
    return -(target * torch.log_softmax(_full(logits), -1)).sum(-1)


# --- categorical latents with unimix and straight-through samples --------------------------------
def unimix_probs(logits: torch.Tensor, unimix: float) -> torch.Tensor:
    """``(1−unimix)·softmax(logits) + unimix/K`` over the last axis."""
    probs = torch.softmax(_full(logits), -1)
    return (1 - unimix) * probs + unimix / logits.shape[-1]


def gumbel_noise(shape, generator: torch.Generator | None, device=None) -> torch.Tensor:
    """Standard Gumbel noise; with it, argmax(log p + noise) is a sample from p."""
    u = torch.rand(shape, generator=generator, device=device).clamp(1e-20, 1 - 1e-7)
    return -torch.log(-torch.log(u))


def categorical_sample_st(probs: torch.Tensor, gumbel: torch.Tensor) -> torch.Tensor:
    """One-hot sample argmax(log p + gumbel) with straight-through gradient to ``probs``."""
    index = torch.argmax(torch.log(probs) + gumbel, -1)
    sample = F.one_hot(index, probs.shape[-1]).to(probs.dtype)
    return sample + (probs - probs.detach())


def categorical_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p‖q) of categorical probabilities, summed over the class axis (last) only."""
    return (p * (torch.log(p) - torch.log(q))).sum(-1)


def free_bits(kl: torch.Tensor, free: float) -> torch.Tensor:
    """Clip a KL below at ``free`` nats: below it the loss is constant and sends no gradient."""
    return torch.clamp(kl, min=free)


# --- bounded normal actor head --------------------------------------------------------------------
def actor_mean_std(
    raw_mean: torch.Tensor, raw_std: torch.Tensor, min_std: float = 0.1, max_std: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean tanh(m) in (−1, 1) and std ``(max−min)·sigmoid(s+2)+min`` of the actor's normal (at least
    float32: the std enters the entropy term of the actor loss)."""
    return torch.tanh(_full(raw_mean)), (max_std - min_std) * torch.sigmoid(_full(raw_std) + 2.0) + min_std


def normal_entropy(std: torch.Tensor) -> torch.Tensor:
    """Entropy of a diagonal normal, summed over the last (action) axis."""
    return (0.5 + 0.5 * math.log(2 * math.pi) + torch.log(std)).sum(-1)


# --- continue head --------------------------------------------------------------------------------
def bernoulli_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of binary targets under Bernoulli(sigmoid(logits))."""
    return F.binary_cross_entropy_with_logits(_full(logits), target.to(_full(logits).dtype), reduction="none")
