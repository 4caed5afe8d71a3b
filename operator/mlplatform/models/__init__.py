"""Data models: the MLModel spec and status, their rules, and manifest parsing. No I/O libraries."""
