"""Losses, λ-returns and the DreamerV3 agent (training step and policy step)."""
