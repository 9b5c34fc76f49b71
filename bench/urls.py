import os

from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from fraudsite.urls import urlpatterns as app_urlpatterns


class ConstantView(APIView):
    """What DRF costs with no work at all: parse nothing, return a constant."""

    def post(self, request):
        return Response({"is_fraud": False})


urlpatterns = [path("bench/constant", ConstantView.as_view()), *app_urlpatterns]

if os.environ.get("BENCH_WITHOUT_STORING") == "1":
    # What scoring would cost if it stored nothing: every step of POST /detect-fraud but storing
    # (the rows are neither built nor written; the ids answered are made up). Only for measuring
    # what storing costs (bench/http_scoring.py and bench/request_cost.py --without-storing);
    # never in the app.
    from detection import services

    services.store_scored = lambda *, values, **_: list(range(1, len(values) + 1))
