"""The checks of `agentundo lint`, their registry and engine."""
