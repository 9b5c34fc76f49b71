from django.urls import path

from . import views
from .api import ActiveModelView, ModelVersionView

urlpatterns = [
    path("models/", views.version_list, name="models"),
    path("models/<int:version>/", views.version_page, name="model-version"),
    path("models/<int:version>/activate", views.activate, name="model-activate"),
    path("models/<int:version>/shadow/start", views.start_shadow, name="model-shadow-start"),
    path("models/<int:version>/shadow/stop", views.stop_shadow, name="model-shadow-stop"),
    path("models/data-files/", views.data_files, name="data-files"),
    path("models/training-runs/", views.training_runs, name="training-runs"),
    path("api/models/active", ActiveModelView.as_view(), name="model-active"),
    path("api/models/<int:version>", ModelVersionView.as_view(), name="model-version-api"),
]
