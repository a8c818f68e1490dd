# PayTrust application image: the API (gunicorn) and, with another command, the job worker.
#   docker build -t paytrust .
#   docker run --env-file .env -p 8000:8000 paytrust                                   # API
#   docker run --env-file .env paytrust python manage.py procrastinate worker          # worker
#   docker run --env-file .env paytrust python manage.py migrate --noinput             # schema
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
RUN groupadd --system --gid 10001 paytrust \
    && useradd --system --uid 10001 --gid paytrust --home-dir /app --no-create-home paytrust

# Dependencies first (pyproject.toml declares no packages, so this installs only the pinned dependencies):
# the layer is reused until pyproject.toml changes.
COPY pyproject.toml ./
RUN pip install .

COPY --chown=paytrust:paytrust . .

# Static files (Swagger UI, admin) are served by the app itself (paytrust/ops.py); metrics of all gunicorn
# workers are aggregated through PROMETHEUS_MULTIPROC_DIR, emptied at every container start.
ENV HOST=0.0.0.0 \
    PORT=8000 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/paytrust-prometheus
USER paytrust
EXPOSE 8000
# gunicorn stops gracefully on SIGTERM (in-flight requests finish within GUNICORN_GRACEFUL_TIMEOUT).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8000\")}/healthz', timeout=2)"
CMD ["sh", "-c", "rm -rf \"$PROMETHEUS_MULTIPROC_DIR\" && mkdir -p \"$PROMETHEUS_MULTIPROC_DIR\" && exec gunicorn paytrust.wsgi:application -c python:paytrust.gunicorn_conf"]
