"""Policy decision evaluation and explanation (pure functions)."""
