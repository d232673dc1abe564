"""The learning: loss terms and objectives, λ-returns, the DreamerV3 agent, model trust and promotion."""
