"""Thin Typer commands: parse options, call the core, map results to exit codes."""
