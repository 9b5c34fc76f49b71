from django.contrib import admin
from django.urls import path

from detection.api import DetectFraudView
from detection.views import score_form

urlpatterns = [
    path("", score_form, name="score-form"),
    # The original app's route, with and without the trailing slash its clients may add.
    path("detect-fraud", DetectFraudView.as_view(), name="detect-fraud"),
    path("detect-fraud/", DetectFraudView.as_view()),
    path("admin/", admin.site.urls),
]
