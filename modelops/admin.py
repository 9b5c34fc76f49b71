from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path

from common.admin import ReadOnlyAdmin

from .models import DataFile, Deployment, ModelEvent, ModelVersion, TrainingRun
from .services import deployments
from .tasks import enqueue_retrain, enqueue_scan


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = [
        "version",
        "state",
        "f1",
        "auprc",
        "threshold",
        "training_rows",
        "training_frauds",
        "parent",
        "created_at",
        "activated_at",
    ]
    list_filter = ["status", "deployment__role", "created_at"]
    list_select_related = ["deployment", "parent"]
    search_fields = ["version", "sha256"]
    readonly_fields = [f.name for f in ModelVersion._meta.fields] + ["data_files"]
    actions = ["activate_version", "put_into_shadow", "stop_shadowing"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        # Versions are never deleted: predictions and events refer to them.
        return False

    @admin.action(description="Activate (or roll back to, or promote) the selected version", permissions=["activate"])
    def activate_version(self, request, queryset):
        active = ModelVersion.objects.primary().first()
        return self._confirmed(
            request,
            queryset,
            action="activate_version",
            verb="Activate",
            explanation=(
                (f"The primary is v{active.version}." if active else "No version is primary.")
                + " Every web worker serves the version you activate from its next request on."
            ),
            compared=[active],
            change=deployments.activate_version,
            errors=deployments.ActivationError,
            done="is now primary",
        )

    @admin.action(description="Put the selected version into shadow", permissions=["activate"])
    def put_into_shadow(self, request, queryset):
        return self._confirmed(
            request,
            queryset,
            action="put_into_shadow",
            verb="Put into shadow",
            explanation=(
                "A shadow scores the traffic stored from now on, after it was answered; it never answers or alerts."
            ),
            compared=[ModelVersion.objects.primary().first()],
            change=deployments.deploy_shadow,
            errors=(deployments.ShadowError, deployments.ActivationUnavailable),
            done="is in shadow",
        )

    @admin.action(description="Stop shadowing the selected version", permissions=["activate"])
    def stop_shadowing(self, request, queryset):
        return self._confirmed(
            request,
            queryset,
            action="stop_shadowing",
            verb="Stop shadowing",
            explanation="The scores it made in shadow are kept.",
            compared=[],
            change=deployments.stop_shadow,
            errors=deployments.ShadowError,
            done="is no longer in shadow",
        )

    def _confirmed(self, request, queryset, *, action, verb, explanation, compared, change, errors, done):
        """One version, a confirmation page with a reason first, then the deployment change."""
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version.", messages.WARNING)
            return None
        version = queryset.get()
        if request.POST.get("confirmed") != "yes":
            return TemplateResponse(
                request,
                "admin/modelops/confirm_deployment.html",
                {
                    **self.admin_site.each_context(request),
                    "version": version,
                    "action": action,
                    "verb": verb,
                    "explanation": explanation,
                    "compared": [v for v in (version, *compared) if v is not None],
                    "opts": self.model._meta,
                },
            )
        try:
            change(
                version_id=version.pk,
                actor=request.user.get_username(),
                user=request.user,
                reason=request.POST.get("reason", "").strip() or "from the admin",
            )
        except errors as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return None
        self.message_user(request, f"v{version.version} {done}.", messages.SUCCESS)
        return None

    def has_activate_permission(self, request):
        return request.user.has_perm("modelops.activate_modelversion")


@admin.register(Deployment)
class DeploymentAdmin(ReadOnlyAdmin):
    list_display = ["version", "role", "since", "scored_through", "reason"]
    list_filter = ["role"]


@admin.register(ModelEvent)
class ModelEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "kind", "from_version", "to_version", "actor", "reason"]
    list_filter = ["kind", "actor"]
    search_fields = ["reason", "actor"]


class ButtonAdmin(admin.ModelAdmin):
    """A changelist with one POST button (in the object tools) that runs ``run_button``."""

    change_list_template = "admin/modelops/change_list_with_button.html"
    button_label = ""

    def get_urls(self):
        name = f"{self.model._meta.app_label}_{self.model._meta.model_name}_button"
        return [path("run/", self.admin_site.admin_view(self.button_view), name=name), *super().get_urls()]

    def button_view(self, request):
        if request.method != "POST" or not self.may_press(request):
            raise PermissionDenied
        self.message_user(request, self.run_button(request), messages.INFO)
        return redirect(f"admin:{self.model._meta.app_label}_{self.model._meta.model_name}_changelist")

    def changelist_view(self, request, extra_context=None):
        button = {"label": self.button_label, "url": "run/"} if self.may_press(request) else None
        return super().changelist_view(request, {**(extra_context or {}), "button": button})

    def has_add_permission(self, request):
        return False


@admin.register(DataFile)
class DataFileAdmin(ButtonAdmin):
    list_display = ["key", "status", "rows", "frauds", "size", "first_seen", "processed_at", "error"]
    list_filter = ["status"]
    search_fields = ["key", "error"]
    readonly_fields = [f.name for f in DataFile._meta.fields]
    button_label = "Scan the bucket now"

    def may_press(self, request):
        return request.user.has_perm("modelops.scan_datafile")

    def run_button(self, request):
        # Queued, not run here: reading a large bucket would hold the web worker for minutes.
        enqueue_scan()
        return "A scan is queued; the files it finds appear here when it has run."


@admin.register(TrainingRun)
class TrainingRunAdmin(ButtonAdmin):
    list_display = ["id", "trigger", "status", "started_at", "heartbeat_at", "finished_at", "result_version", "error"]
    list_filter = ["status", "trigger"]
    search_fields = ["log", "error"]
    readonly_fields = [f.name for f in TrainingRun._meta.fields]
    button_label = "Retrain now"

    def may_press(self, request):
        return request.user.has_perm("modelops.activate_modelversion")

    def run_button(self, request):
        enqueue_retrain(trigger=TrainingRun.Trigger.ADMIN, actor=request.user.get_username())
        return "A retrain is queued; it appears here when it starts."
