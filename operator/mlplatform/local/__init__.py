"""Local mode: MLModel manifests on disk as the desired state, no cluster."""
