from django.contrib import admin
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from detection.api import DetectFraudView
from detection.views import score_form
from fraudsite.health import Healthz, Readyz
from modelops.api import ActiveModelView, ModelVersionView

urlpatterns = [
    path("", score_form, name="score-form"),
    # The original app's route, with and without the trailing slash its clients may add.
    path("detect-fraud", DetectFraudView.as_view(), name="detect-fraud"),
    path("detect-fraud/", DetectFraudView.as_view()),
    path("api/models/active", ActiveModelView.as_view(), name="model-active"),
    path("api/models/<int:version>", ModelVersionView.as_view(), name="model-version"),
    path("healthz", Healthz.as_view(), name="healthz"),
    path("readyz", Readyz.as_view(), name="readyz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("admin/", admin.site.urls),
]
