"""Network building blocks: LayerNorm+SiLU MLPs and the LayerNorm GRU cell of DreamerV3."""

from dreamer_core.networks.gru import LayerNormGRUCell
from dreamer_core.networks.mlp import MLP, NormLinear

__all__ = ["MLP", "LayerNormGRUCell", "NormLinear"]
