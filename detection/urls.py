from django.urls import path

from . import views
from .api import DetectFraudView

urlpatterns = [
    path("", views.score_form, name="score-form"),
    # With and without the trailing slash compatible clients may add.
    path("detect-fraud", DetectFraudView.as_view(), name="detect-fraud"),
    path("detect-fraud/", DetectFraudView.as_view()),
    path("score-file/", views.score_file, name="score-file"),
    path("review/", views.queue, name="queue"),
    path("review/decide", views.decide_many, name="decide-many"),
    path("review/<int:pk>/", views.transaction_page, name="transaction"),
    path("review/<int:pk>/decide", views.decide, name="decide"),
]
