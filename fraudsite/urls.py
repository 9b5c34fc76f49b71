from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from detection import views as detection_views
from detection.api import DetectFraudView
from fraudsite.health import Healthz, Readyz
from modelops import views as modelops_views
from modelops.api import ActiveModelView, ModelVersionView

urlpatterns = [
    path("", detection_views.score_form, name="score-form"),
    # The original app's route, with and without the trailing slash its clients may add.
    path("detect-fraud", DetectFraudView.as_view(), name="detect-fraud"),
    path("detect-fraud/", DetectFraudView.as_view()),
    path("score-file/", detection_views.score_file, name="score-file"),
    path("review/", detection_views.queue, name="queue"),
    path("review/decide", detection_views.decide_many, name="decide-many"),
    path("review/<int:pk>/", detection_views.transaction_page, name="transaction"),
    path("review/<int:pk>/decide", detection_views.decide, name="decide"),
    path("models/", modelops_views.version_list, name="models"),
    path("models/<int:version>/", modelops_views.version_page, name="model-version"),
    path("models/<int:version>/activate", modelops_views.activate, name="model-activate"),
    path("models/data-files/", modelops_views.data_files, name="data-files"),
    path("models/training-runs/", modelops_views.training_runs, name="training-runs"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/models/active", ActiveModelView.as_view(), name="model-active"),
    path("api/models/<int:version>", ModelVersionView.as_view(), name="model-version-api"),
    path("healthz", Healthz.as_view(), name="healthz"),
    path("readyz", Readyz.as_view(), name="readyz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("admin/", admin.site.urls),
]
