"""Runners: the interface (``base``) and its backends. Only ``docker_runner`` imports docker."""
