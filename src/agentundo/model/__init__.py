"""Pydantic models of agentundo's file formats."""
