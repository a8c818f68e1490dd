import os

from django.core.wsgi import get_wsgi_application

from paytrust.tracing import configure as configure_tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paytrust.settings")
configure_tracing()  # before the middleware is loaded: it adds the request span (paytrust/tracing.py)
application = get_wsgi_application()
