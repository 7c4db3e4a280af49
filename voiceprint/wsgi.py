"""WSGI entry point for gunicorn: ``gunicorn voiceprint.wsgi:app``."""
from voiceprint import create_app

app = create_app()
