"""Loading input files: YAML with positions, schema validation, models."""
