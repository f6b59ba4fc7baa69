"""The WSGI entry point: ``gunicorn wsgi:app`` (see platform/) or ``flask --app wsgi``."""

from core import create_app

app = create_app()
