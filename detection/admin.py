from django.contrib import admin, messages

from common.admin import ReadOnlyAdmin

from . import reviews
from .auth import create_key, revoke_key
from .models import ApiKey, LabelFile, Prediction, Review, Transaction


class PredictionInline(admin.TabularInline):
    model = Prediction
    extra = 0
    can_delete = False
    readonly_fields = ["model_version", "score", "threshold", "is_fraud", "contributions", "created_at"]


class ReviewInline(admin.TabularInline):
    model = Review
    extra = 0
    can_delete = False
    readonly_fields = ["created_at", "reviewer_name", "label", "note"]
    fields = readonly_fields

    def has_add_permission(self, request, obj=None):
        return False  # decisions are recorded by the actions, through the review service


@admin.register(Transaction)
class TransactionAdmin(admin.ModelAdmin):
    list_display = ["id", "external_id", "amount", "time", "source", "label", "reviewed_by", "created_at"]
    list_filter = ["source", "label", "created_at"]
    search_fields = ["external_id"]
    list_select_related = ["reviewed_by"]
    readonly_fields = [
        "external_id",
        "time",
        "amount",
        "v",
        "source",
        "created_at",
        "label",
        "reviewed_by",
        "reviewed_at",
    ]
    inlines = [PredictionInline, ReviewInline]
    actions = ["confirm_fraud", "mark_legitimate"]

    def has_add_permission(self, request):
        return False  # transactions come from scoring

    def _decide(self, request, queryset, label: str) -> None:
        try:
            recorded = reviews.decide(
                transaction_ids=queryset.values_list("pk", flat=True), label=label, user=request.user
            )
        except reviews.ReviewError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, f"{recorded} decision(s) recorded.", messages.SUCCESS)

    @admin.action(description="Confirm fraud", permissions=["review"])
    def confirm_fraud(self, request, queryset):
        self._decide(request, queryset, Transaction.Label.FRAUD)

    @admin.action(description="Mark legitimate", permissions=["review"])
    def mark_legitimate(self, request, queryset):
        self._decide(request, queryset, Transaction.Label.LEGITIMATE)

    def has_review_permission(self, request):
        return request.user.has_perm("detection.review_transaction")


@admin.register(LabelFile)
class LabelFileAdmin(ReadOnlyAdmin):
    list_display = ["processed_at", "key", "status", "rows", "recorded", "repeated", "error"]
    list_filter = ["status"]
    search_fields = ["key", "error"]


@admin.register(Review)
class ReviewAdmin(ReadOnlyAdmin):
    """The decisions' audit trail: read-only, never deleted."""

    list_display = ["created_at", "transaction", "label", "source", "reviewer_name", "reported_at", "note"]
    list_filter = ["label", "source", "created_at"]
    search_fields = ["reviewer_name", "note", "transaction__external_id"]
    list_select_related = ["transaction"]


@admin.register(Prediction)
class PredictionAdmin(ReadOnlyAdmin):
    """A prediction is the record of a decision the model made."""

    list_display = ["id", "transaction", "model_version", "score", "threshold", "is_fraud", "created_at"]
    list_filter = ["is_fraud", "model_version"]
    list_select_related = ["transaction", "model_version"]
    # By id, which the primary key serves: created_at has no index here.
    ordering = ["-id"]
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

    @admin.action(description="Revoke the selected keys", permissions=["change"])
    def revoke(self, request, queryset):
        revoked = sum(revoke_key(prefix=row.prefix) for row in queryset)
        self.message_user(request, f"{revoked} key(s) revoked; they stop working at once.", messages.SUCCESS)
