# The operator image: `docker build -t mlplatform-operator:0.1.0 .`
# (kind: `kind load docker-image mlplatform-operator:0.1.0`; k3d: `k3d image import ...`).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
# Root without capabilities (the Deployment drops them all): the host's Docker socket is
# root-owned. Nothing is written in the image; certificates go to the /tls volume.
ENV PYTHONUNBUFFERED=1 ENVIRONMENT=production
ENTRYPOINT ["mlplatform"]
CMD ["operator", "--standalone"]
