"""WSGI entry point at the repository root: ``gunicorn wsgi:app``.

Run ``voiceprint db upgrade`` first (``voiceprint serve`` does both). On the
embedded Milvus Lite default use one worker (``-w 1 --threads 4``).
"""
from voiceprint.wsgi import app  # noqa: F401
