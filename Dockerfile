# voiceprint service image (CPU). Models are read from /models or downloaded
# into PaddleSpeech's cache (/root/.paddlespeech) on first start.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends libsndfile1 libgomp1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY setup.cfg pyproject.toml README.md ./
COPY voiceprint ./voiceprint
COPY eval ./eval
COPY migrations ./migrations
COPY alembic.ini wsgi.py ./
ENV PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --no-cache-dir -e '.[mysql,postgres,paddle,offline]' \
    && pip install --no-cache-dir --no-deps paddlespeech==1.5.0 resemblyzer==0.1.4
ENV VOICEPRINT_DATA_DIR=/data
EXPOSE 8000
# `voiceprint serve` applies migrations/, then execs gunicorn
CMD ["voiceprint", "serve", "--bind", "0.0.0.0:8000"]
