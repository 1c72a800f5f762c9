"""The saga engine: clock, lock, executors, fault plan (no terminal code)."""
