"""Environments (pure numpy tasks here; the simulated A1 lives beside them)."""
