"""Runners: the interface (``base``) and its backends. Only the ``docker_*`` modules import
docker; only ``kubernetes`` imports kubernetes."""
