from django.contrib import admin

from .models import Prediction, Transaction


class PredictionInline(admin.TabularInline):
    model = Prediction
    extra = 0
    can_delete = False
    readonly_fields = ["model_version", "score", "threshold", "is_fraud", "contributions", "created_at"]


@admin.register(Transaction)
class TransactionAdmin(admin.ModelAdmin):
    list_display = ["id", "external_id", "amount", "time", "source", "label", "created_at"]
    list_filter = ["source", "label", "created_at"]
    search_fields = ["external_id"]
    readonly_fields = ["external_id", "time", "amount", "v", "source", "created_at"]
    inlines = [PredictionInline]


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ["id", "transaction", "model_version", "score", "threshold", "is_fraud", "created_at"]
    list_filter = ["is_fraud", "model_version"]
    list_select_related = ["transaction", "model_version"]
    readonly_fields = [f.name for f in Prediction._meta.fields]
