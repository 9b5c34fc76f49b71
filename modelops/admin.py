from django.contrib import admin

from .models import DataFile, ModelEvent, ModelVersion, TrainingRun


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = [
        "version",
        "status",
        "f1",
        "auprc",
        "threshold",
        "training_rows",
        "training_frauds",
        "created_at",
        "activated_at",
    ]
    list_filter = ["status", "created_at"]
    search_fields = ["version", "sha256"]
    readonly_fields = [f.name for f in ModelVersion._meta.fields] + ["data_files"]

    def has_delete_permission(self, request, obj=None):
        # Versions are never deleted: predictions and events refer to them.
        return False


@admin.register(ModelEvent)
class ModelEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "from_version", "to_version", "actor", "reason"]
    list_filter = ["kind", "actor"]
    search_fields = ["reason", "actor"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(DataFile)
class DataFileAdmin(admin.ModelAdmin):
    list_display = ["key", "status", "rows", "frauds", "size", "first_seen", "processed_at", "error"]
    list_filter = ["status"]
    search_fields = ["key", "error"]
    readonly_fields = [f.name for f in DataFile._meta.fields]


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["id", "trigger", "status", "started_at", "finished_at", "result_version", "error"]
    list_filter = ["status", "trigger"]
    readonly_fields = [f.name for f in TrainingRun._meta.fields]
