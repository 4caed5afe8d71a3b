"""The Kubernetes adapter: CRD, kopf handlers, admission. Only here: kopf and kubernetes."""
