"""Producing catalogs from other sources: MCP ``tools/list`` results (``catalog import``)."""
