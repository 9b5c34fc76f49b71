"""The HTTP benchmarks' yardstick: a one-file Django project with one DRF endpoint that parses the
JSON body and answers a constant. Security and Common middleware only, no database, no
authentication: what any Django API costs on this machine, measured in the same run as ours.

    .venv/bin/gunicorn bench.yardstick:application --workers 2
"""

from __future__ import annotations

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="yardstick",  # no sessions, cookies or signing: the key protects nothing here
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=["django.middleware.security.SecurityMiddleware", "django.middleware.common.CommonMiddleware"],
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"],
    DATABASES={},
    LOGGING_CONFIG=None,
    REST_FRAMEWORK={
        "DEFAULT_AUTHENTICATION_CLASSES": [],
        "DEFAULT_PERMISSION_CLASSES": [],
        "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
        "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
        "UNAUTHENTICATED_USER": None,
    },
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.urls import path  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402


class Constant(APIView):
    def post(self, request):
        request.data  # noqa: B018  (parse the body, as an API must)
        return Response({"is_fraud": False})

    def get(self, request):
        return Response({"status": "ok"})


# GET /readyz, as the app answers it, tells the benchmark the server is up.
urlpatterns = [path("detect-fraud", Constant.as_view()), path("readyz", Constant.as_view())]
application = get_wsgi_application()
