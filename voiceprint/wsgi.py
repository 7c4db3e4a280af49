"""Entry points for servers.

* ``voiceprint.wsgi:app`` - the Flask (WSGI) app, for any WSGI server;
* ``voiceprint.wsgi:asgi`` - the same app behind :class:`~voiceprint.serving.BufferedWSGI`,
  which receives request bodies on gunicorn's asyncio worker before a thread
  runs the app (``voiceprint serve`` runs ``gunicorn -k asgi voiceprint.wsgi:asgi``).
"""
from voiceprint import create_app
from voiceprint.serving import BufferedWSGI

app = create_app()
_config = app.config["VOICEPRINT"]
asgi = BufferedWSGI(app, max_body=_config.MAX_REQUEST_BYTES,
                    body_timeout=_config.BODY_TIMEOUT_SECONDS,
                    threads=_config.SERVE_THREADS)
