"""The Kubernetes runner (``spec.runner: kubernetes``): a Deployment, a Service and a claim.

``plan`` turns a workload into the objects (pure); ``runner`` talks to the API with the
``kubernetes`` client; ``status`` reads the cluster's facts into a runner status; ``watch``
turns watches of the managed objects into runner events.
"""
