"""The naming and path rules of an MLModel, as data: patterns, limits and their messages.

One place for each rule, so the spec model (Python), the CRD (OpenAPI + CEL) and the
documentation all quote the same pattern and the same words. Patterns use only the
RE2 subset, because the API server evaluates them with RE2 in CEL and OpenAPI.
"""

from __future__ import annotations

from typing import Final

# Safe ids: `spec.id` is `name:version`. The id names a Docker container (`<name>-<version>`),
# a DNS name on the models' network (`http://<name>-<version>:<port>`) and two nested
# storage folders (`STORAGE_DIR/services-ml/<name>/<version>`), so each part must be safe
# for all three: lower-case DNS-1123 characters, no `/`, no `..`, no spaces, bounded length.
_DNS_LABEL: Final = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
ID_VERSION_PATTERN: Final = rf"{_DNS_LABEL}(\.{_DNS_LABEL})*"
ID_NAME_PATTERN: Final = _DNS_LABEL
ID_PATTERN: Final = rf"^{ID_NAME_PATTERN}:{ID_VERSION_PATTERN}$"
# A container name `<name>-<version>` must fit a DNS label (63) so endpoints resolve.
ID_MAX_LENGTH: Final = 64  # name + ":" + version, so that name + "-" + version <= 63
ID_RULE: Final = (
    'must be "name:version": name is lower-case letters, digits and "-", '
    'version is dot-separated parts of the same kind (a DNS-1123 subdomain, so no "..", '
    '"/", "_" or spaces), at most 64 characters in all'
)
# The short form, after a message that already said what is wrong.
ID_RULE_SHORT: Final = 'an id is "name:version" in lower-case letters, digits, "-" and "."'

# Volumes: absolute container paths made of plain segments.
VOLUME_SEGMENT_PATTERN: Final = r"[A-Za-z0-9_][-._A-Za-z0-9]*"
VOLUME_PATTERN: Final = rf"^(/{VOLUME_SEGMENT_PATTERN})+$"
VOLUME_MAX_LENGTH: Final = 255
VOLUMES_MAX_ITEMS: Final = 16
VOLUME_RULE: Final = (
    'must be an absolute path of plain segments (letters, digits, ".", "_", "-"; '
    'not "/", no "..", no ":" or spaces)'
)
# Read-only data folders: these two paths are mounted read-only from DATA_DIR, MLMODELS_DIR.
READ_ONLY_VOLUMES: Final = ("/data", "/models")

PORTS_MAX_ITEMS: Final = 32
ENV_MAX_ITEMS: Final = 128
ENV_NAME_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]*$"
ENV_VALUE_MAX_LENGTH: Final = 32768
ARGS_MAX_ITEMS: Final = 128
ARG_MAX_LENGTH: Final = 4096

# Docker's reference grammar (distribution/reference), RE2-compatible.
_DOMAIN_COMPONENT: Final = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN: Final = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
_PATH_COMPONENT: Final = r"[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*"
_TAG: Final = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST: Final = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_PATTERN: Final = (
    rf"^(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?$"
)
IMAGE_MAX_LENGTH: Final = 255

CPU_PATTERN: Final = r"^([0-9]+(\.[0-9]{1,3})?|[0-9]+m)$"
# A CPU quantity that is zero ("0", "0.0", "000m"): refused, a container needs some CPU.
CPU_ZERO_PATTERN: Final = r"^0+(\.0+)?m?$"
MEMORY_PATTERN: Final = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$"
# Docker refuses memory limits under 6 MiB.
MEMORY_MIN_BYTES: Final = 6 * 1024 * 1024
HTTP_PATH_PATTERN: Final = r"^/[-A-Za-z0-9._~!$&'()*+,;=:@%/?]*$"

# How long a stopping container gets between SIGTERM and SIGKILL. Kubernetes' default is 30
# and its bound is open; Docker's `docker stop` default is 10. Bounded so that one model
# cannot hold a teardown, a deletion or an update hostage for long.
GRACE_PERIOD_DEFAULT_SECONDS: Final = 10
GRACE_PERIOD_MAX_SECONDS: Final = 300
# The Kubernetes runner names a Service after the MLModel, so the name must be a DNS-1035
# label: lower-case letters, digits and "-", starting with a letter, at most 63 characters.
DNS_1035_LABEL_PATTERN: Final = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
DNS_1035_LABEL_MAX_LENGTH: Final = 63
KUBERNETES_NAME_RULE: Final = (
    "must be a DNS-1035 label for runner kubernetes (it names the model's Service): "
    'lower-case letters, digits and "-", starting with a letter and ending with a letter or '
    "digit, at most 63 characters"
)
# Debug ports are a Docker-runner feature (host ports on the operator's machine).
KUBERNETES_DEBUG_RULE: Final = (
    "debug: true is for runner docker only (with runner kubernetes, reach the model with "
    "kubectl port-forward svc/<name> <port>)"
)
