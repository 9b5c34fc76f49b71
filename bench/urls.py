from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from fraudsite.urls import urlpatterns as app_urlpatterns


class ConstantView(APIView):
    """What DRF costs with no work at all: parse nothing, return a constant."""

    def post(self, request):
        return Response({"is_fraud": False})


urlpatterns = [path("bench/constant", ConstantView.as_view()), *app_urlpatterns]
