"""mlplatform: a Kubernetes-style reconciling operator that runs ML model servers on Docker.

Layers, each importing only the ones below it (enforced by import-linter, see pyproject):

    cli                      the ``mlplatform`` command
    kube | local             adapters: kopf handlers and admission; manifests on disk
    core                     the level-based reconciler, status, back-off
    runners                  the runner interface and its Docker backend
    models                   the MLModel spec, status and manifest parsing
"""

__version__ = "0.1.0"
