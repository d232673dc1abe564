"""DreamerV3 models: the RSSM, the world model around it, and the actor and critic."""

from dreamer_core.models.actor_critic import Actor, Critic
from dreamer_core.models.rssm import RSSM
from dreamer_core.models.world_model import WorldModel

__all__ = ["RSSM", "Actor", "Critic", "WorldModel"]
