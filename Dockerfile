# syntax=docker/dockerfile:1
# sectigo-svc: the service image (default target) and the emulator image (--target emulator).
# Configuration is by environment and mounted files only; see docs/operations.md.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# 1. Build wheels for the project and its dependencies; compilers never leave this stage. The
#    client distribution (clients/: the generated API and the client) first: the server needs it.
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY sectigo_svc ./sectigo_svc
COPY clients ./clients
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels ./clients \
 && pip wheel --no-cache-dir --wheel-dir /wheels --find-links /wheels .

# 2. The runtime: the wheels installed, no build tools, no dev extras, a non-root user.
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1
RUN groupadd --system --gid 10001 sectigo \
 && useradd --system --uid 10001 --gid sectigo --home-dir /var/lib/sectigo-svc \
    --no-create-home --shell /usr/sbin/nologin sectigo \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/sectigo-svc
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links=/wheels sectigo-svc && rm -rf /wheels
WORKDIR /var/lib/sectigo-svc
VOLUME ["/var/lib/sectigo-svc"]
ENTRYPOINT ["sectigo-svc"]

# 3. The Sectigo emulator, for development stacks and integration environments.
FROM runtime AS emulator
USER 10001:10001
ENV SECTIGO_EMULATOR_HOST=0.0.0.0 \
    SECTIGO_EMULATOR_PORT=8831 \
    SECTIGO_EMULATOR_MANAGEMENT_PORT=8832 \
    SECTIGO_EMULATOR_STATE_DIR=/var/lib/sectigo-svc/emulator \
    SECTIGO_EMULATOR_ISSUE_DELAY=2
EXPOSE 8831 8832
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8831/status', timeout=2)"]
CMD ["emulator"]

# 4. The service (the default target): mutual TLS on 9443, plain-text health probes on 9444,
#    Prometheus metrics on 9464. TLS material, policy and the Sectigo password are mounted files.
FROM runtime AS service
USER 10001:10001
ENV SECTIGO_SVC_LISTEN=0.0.0.0:9443 \
    SECTIGO_SVC_HEALTH_LISTEN=0.0.0.0:9444 \
    SECTIGO_SVC_METRICS_LISTEN=0.0.0.0:9464 \
    SECTIGO_SVC_STATE_DIR=/var/lib/sectigo-svc \
    SECTIGO_SVC_TLS_CERT=/etc/sectigo-svc/tls/tls.crt \
    SECTIGO_SVC_TLS_KEY=/etc/sectigo-svc/tls/tls.key \
    SECTIGO_SVC_TLS_CLIENT_CA=/etc/sectigo-svc/tls/client-ca.crt \
    SECTIGO_SVC_POLICY_FILE=/etc/sectigo-svc/policy/policy.toml \
    SECTIGO_SVC_SECTIGO_PASSWORD_FILE=/etc/sectigo-svc/sectigo/password \
    SECTIGO_SVC_LOG_FORMAT=json
EXPOSE 9443 9444 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["sectigo-svc", "healthcheck", "--target", "127.0.0.1:9444"]
CMD ["serve"]
