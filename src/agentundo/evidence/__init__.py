"""Evidence files: writing, reading, hash chain, verification."""
