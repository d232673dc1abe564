"""Loops that drive the agent: the learner (used by learner_node), the online loop (tests and
benchmarks) and the train-ratio limiter both pace themselves with."""
