"""Renderers of results: text (rich), json and the CI formats."""
