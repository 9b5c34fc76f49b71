from django.contrib import admin, messages

from .auth import create_key, revoke_key
from .models import ApiKey, Prediction, Transaction


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


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are created here with only a name; the key is shown once, in the confirmation."""

    list_display = ["name", "prefix", "created_at", "created_by", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix"]
    fields = ["name"]
    actions = ["revoke"]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the row stays as the record of who had access

    def save_model(self, request, obj, form, change):
        row, key = create_key(name=obj.name, created_by=request.user)
        obj.pk = row.pk
        self.message_user(request, f"API key for {row.name}: {key} (copy it now: it is not stored)", messages.WARNING)

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request, queryset):
        revoked = sum(revoke_key(prefix=row.prefix) for row in queryset)
        self.message_user(request, f"{revoked} key(s) revoked; they stop working at once.", messages.SUCCESS)
