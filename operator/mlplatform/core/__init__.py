"""The reconcile core: level-based, idempotent, knows nothing of kopf or files."""
