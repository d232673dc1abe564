"""DreamerV3 models: the RSSM, the world model around it, the actor and critic, and the exported tick."""

from dreamer_core.models.actor_critic import Actor, Critic
from dreamer_core.models.policy_tick import PolicyTick
from dreamer_core.models.rssm import RSSM
from dreamer_core.models.world_model import WorldModel

__all__ = ["RSSM", "Actor", "Critic", "PolicyTick", "WorldModel"]
