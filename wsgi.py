"""Entry points at the repository root: ``gunicorn -k asgi wsgi:asgi`` (or ``wsgi:app``).

Run ``voiceprint db upgrade`` first (``voiceprint serve`` does both and picks
safe settings). On the embedded Milvus Lite default use one worker.
"""
from voiceprint.wsgi import app, asgi  # noqa: F401
