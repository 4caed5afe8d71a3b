# The operator image where a registry serves python:3.11-slim: `docker build -t mlplatform-operator:0.1.0 .`
# Without a registry (these machines): scripts/build-image.sh builds the same offline.
# (kind: `kind load docker-image mlplatform-operator:0.1.0`; k3d: `k3d image import ...`).
# BASE: any Python 3.11+ image with the venv module (python:3.11-slim by default).
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN python3 -m venv /opt/mlplatform \
    && /opt/mlplatform/bin/pip install --no-cache-dir --upgrade pip \
    && /opt/mlplatform/bin/pip install --no-cache-dir .

FROM ${BASE}
COPY --from=build /opt/mlplatform /opt/mlplatform
# Root without capabilities (the Deployment drops them all): the host's Docker socket is
# root-owned. Nothing is written in the image; certificates go to the /tls volume.
ENV PATH=/opt/mlplatform/bin:$PATH PYTHONUNBUFFERED=1 ENVIRONMENT=production
ENTRYPOINT ["mlplatform"]
CMD ["operator", "--standalone"]
