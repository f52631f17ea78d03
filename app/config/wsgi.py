"""WSGI entry point: gunicorn serves every HTTP path except /ws/."""

from django.core.wsgi import get_wsgi_application

from config.environment import load_environment

load_environment()

application = get_wsgi_application()
