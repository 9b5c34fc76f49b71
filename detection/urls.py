from django.urls import path

from . import challenger_views, monitoring_views, views
from .api import DetectFraudView, LabelsView
from .batch_views import BatchesView, BatchResultsView, BatchView

urlpatterns = [
    path("", views.score_form, name="score-form"),
    # With and without the trailing slash compatible clients may add.
    path("detect-fraud", DetectFraudView.as_view(), name="detect-fraud"),
    path("detect-fraud/", DetectFraudView.as_view()),
    path("score-file/", views.score_file, name="score-file"),
    path("api/labels", LabelsView.as_view(), name="labels"),
    path("api/batches", BatchesView.as_view(), name="batches"),
    # Any text: an id that is no UUID gets the API's 404, not the site's.
    path("api/batches/<str:job_id>", BatchView.as_view(), name="batch"),
    path("api/batches/<str:job_id>/results", BatchResultsView.as_view(), name="batch-results"),
    path("review/", views.queue, name="queue"),
    path("review/decide", views.decide_many, name="decide-many"),
    path("review/<int:pk>/", views.transaction_page, name="transaction"),
    path("review/<int:pk>/decide", views.decide, name="decide"),
    path("models/<int:version>/shadow/", challenger_views.shadow_page, name="shadow"),
    path("models/<int:version>/backtests/new", challenger_views.start_backtest, name="backtest-start"),
    path("backtests/<int:pk>/", challenger_views.backtest_page, name="backtest"),
    path("backtests/<int:pk>/resume", challenger_views.resume_backtest, name="backtest-resume"),
    path("backtests/<int:pk>.csv", challenger_views.backtest_csv, name="backtest-csv"),
    path("backtests/compare/", challenger_views.compare_backtests, name="backtest-compare"),
    path("monitoring/", monitoring_views.overview, name="monitoring"),
    path("monitoring/<int:version>/", monitoring_views.version_page, name="monitoring-version"),
]
