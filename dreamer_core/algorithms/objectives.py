"""The learner's objectives: the world-model loss terms and the weighting of every term.

Each term is a per-element loss from :mod:`dreamer_core.algorithms.losses`; the agent
averages and adds them with the config's ``loss_scales``. :func:`scaled_sum` refuses a term
without a scale, so a new loss term cannot enter the objective with an implicit weight.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from dreamer_core.algorithms import losses
from dreamer_core.models.world_model import WorldModel


def scaled_sum(terms: Mapping[str, torch.Tensor], scales: Mapping[str, float]) -> torch.Tensor:
    """``Σ scale[name] · term`` in the order of ``terms``; ValueError naming any term without a scale."""
    missing = [name for name in terms if name not in scales]
    if missing:
        raise ValueError(f"loss terms {missing} have no scale; add them to the agent config's loss_scales")
    return sum(scales[name] * term for name, term in terms.items())


def world_model_terms(wm: WorldModel, data: dict[str, torch.Tensor], gumbel: torch.Tensor,
                      free_nats: float) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Per-element world-model loss terms [T, B] on a time-major batch, and the posterior rollout."""
    embed = wm.encode(data["obs"])
    post = wm.rssm.observe(embed, data["action"], data["is_first"], gumbel)
    feat = wm.features(post["h"], post["z"])
    dyn, rep = losses.kl_losses(post["post"], post["prior"], free_nats)
    terms = {
        "decoder": losses.decoder_loss(wm.decoder(feat), data["obs"]),
        "reward": losses.reward_loss(wm.reward(feat), data["reward"], wm.bins),
        "continue": losses.continue_loss(wm.cont(feat), data["is_terminal"]),
        "kl_dyn": dyn,
        "kl_rep": rep,
        "ensemble": wm.ensemble.loss(feat, data["action"], data, post["post"]),
    }
    return terms, post
