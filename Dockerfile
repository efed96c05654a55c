# The Dropp API server. On start it applies the database migrations, then serves on port 8000,
# using the PostgreSQL and S3 storage named by the environment (see .env.example, compose.yaml).
#
#   docker build -t dropp .
#   docker run --env-file dropp.env -p 8000:8000 dropp
#
# where dropp.env sets at least DATABASE_URL, SECRET_KEY and the S3 settings.
# Any other `dropp` command runs in place of the default one, e.g. `docker run ... dropp init-storage`.

# Both stages must use the same Python: the venv built in the first runs in the second.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}"

WORKDIR /build
COPY pyproject.toml README.md ./
# src/dropp/migrations is a symlink to alembic/, and the wheel build follows it: without
# alembic/ here, the installed package would have no migrations to apply.
COPY alembic/ alembic/
COPY src/ src/
# The cache mount keeps downloaded wheels between builds without putting them in the image.
# The server extra is the API's packages (the base install is only the desktop client).
# The redis extra lets RATE_LIMIT_STORAGE_URL point at Redis when several replicas run.
# Without the embedded extra: the image runs against a PostgreSQL and an S3 of its own and
# carries neither embedded PostgreSQL nor SeaweedFS.
RUN --mount=type=cache,target=/root/.cache/pip pip install '.[server,redis]'


FROM ${PYTHON_IMAGE}

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

RUN useradd --system --user-group --uid 10001 --create-home --home-dir /home/dropp dropp
COPY --from=builder /opt/venv /opt/venv

USER dropp
WORKDIR /home/dropp

EXPOSE 8000

# Liveness only (the process answers); /readyz also checks PostgreSQL and storage.
# The slim image has no curl, so Python asks.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

# `exec` makes the server PID 1, so `docker stop` (SIGTERM) reaches it and it shuts down cleanly.
CMD ["sh", "-c", "dropp migrate && exec dropp serve --host 0.0.0.0 --port 8000"]
