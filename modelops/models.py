"""Model versions, where they are deployed, the data they learned from, training runs and the audit
trail of every deployment change."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class DataFile(models.Model):
    class Status(models.TextChoices):
        NEW = "new"
        USED = "used"
        REJECTED = "rejected"

    key = models.CharField(max_length=500, help_text="Name in the incoming storage")
    etag = models.CharField(max_length=200, help_text="ETag on S3, sha256 on local folders: the cheap identity")
    # An S3 ETag depends on how the file was uploaded: the same bytes are recognised by this.
    sha256 = models.CharField(max_length=64, blank=True, help_text="Empty for a file rejected unread")
    size = models.BigIntegerField(default=0)
    rows = models.IntegerField(null=True, blank=True)
    frauds = models.IntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    error = models.TextField(blank=True, help_text="Exact reason a rejected file was refused")
    first_seen = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # A file is processed once per content, however often the scan runs.
            models.UniqueConstraint(fields=["key", "etag"], name="datafile_once_per_content"),
        ]
        ordering = ["-first_seen"]
        permissions = [("scan_datafile", "Can start a scan of the bucket for new data files")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status})"

    # Error prefix of a file that left the storage before a training used it; taken up if it returns.
    WITHDRAWN = "not trained on: "

    @property
    def withdrawn(self) -> bool:
        return self.status == self.Status.REJECTED and self.error.startswith(self.WITHDRAWN)

    def withdraw(self, why: str) -> None:
        """Reject this file, if no training used it yet, as withdrawn from the storage."""
        self.reject_if_new(f"{self.WITHDRAWN}{why}")

    def reject_if_new(self, error: str) -> None:
        """Reject this file with ``error``, unless a training used it (or it is rejected already)."""
        DataFile.objects.filter(pk=self.pk, status=self.Status.NEW).update(
            status=self.Status.REJECTED, error=error, processed_at=timezone.now()
        )


class ModelVersionQuerySet(models.QuerySet):
    def primary(self) -> ModelVersionQuerySet:
        return self.filter(deployment__role=Deployment.Role.PRIMARY)


class ModelVersion(models.Model):
    # The gate's verdict only; where a version serves is its Deployment.
    class Status(models.TextChoices):
        CANDIDATE = "candidate"
        ACCEPTED = "accepted"
        REJECTED = "rejected"

    class Kind(models.TextChoices):
        FILE = "file", "Trained on a file"
        FULL_RETRAIN = "full_retrain", "Full retrain"
        WARM_START = "warm_start", "Warm start"
        ADOPTED = "adopted", "Adopted from the models storage"

    version = models.PositiveIntegerField(unique=True)
    artifact = models.CharField(max_length=300, help_text="Name of the artifact in the models storage")
    sha256 = models.CharField(max_length=64)
    signing_key = models.CharField(max_length=16, blank=True, help_text="Id of the key the artifact is signed with")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CANDIDATE)
    threshold = models.FloatField()
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.FILE)
    training_run = models.ForeignKey(
        "TrainingRun", null=True, blank=True, on_delete=models.PROTECT, related_name="versions"
    )
    params = models.JSONField(default=dict, blank=True, help_text="The model's parameters, as training chose them")
    metrics = models.JSONField(default=dict, blank=True, help_text="Evaluation on the version's hold-out")
    training_rows = models.IntegerField(default=0)
    training_frauds = models.IntegerField(default=0)
    data_files = models.ManyToManyField(DataFile, blank=True, related_name="model_versions")
    # Also in the artifact, for a database that adopts the version without rows for its files.
    data_files_sha256 = models.JSONField(default=list, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children", help_text="Warm-started from"
    )
    library_versions = models.JSONField(default=dict, blank=True)
    # Quantile bins of the training rows and hold-out scores (ml/reference.py); empty for older versions.
    reference = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    objects = ModelVersionQuerySet.as_manager()

    class Meta:
        ordering = ["-version"]
        permissions = [("activate_modelversion", "Can activate or roll back model versions")]

    def __str__(self) -> str:
        return f"v{self.version} ({self.state})"

    @property
    def role(self) -> str | None:
        """primary, shadow or None (not deployed)."""
        try:
            return self.deployment.role
        except Deployment.DoesNotExist:
            return None

    @property
    def state(self) -> str:
        """What a person reads: the deployment role, else retired (was primary) or the gate's verdict."""
        if self.role:
            return self.role
        if self.status == self.Status.ACCEPTED and self.activated_at:
            return "retired"
        return self.status

    @property
    def f1(self) -> float | None:
        return self.metrics.get("f1")

    @property
    def auprc(self) -> float | None:
        return self.metrics.get("auprc")


class DeploymentQuerySet(models.QuerySet):
    def primary(self) -> DeploymentQuerySet:
        return self.filter(role=Deployment.Role.PRIMARY)

    def shadows(self) -> DeploymentQuerySet:
        return self.filter(role=Deployment.Role.SHADOW)


class Deployment(models.Model):
    """Where a version serves. The primary decides and answers; a shadow is scored on the same
    stored traffic off the request path, and never answers or alerts."""

    class Role(models.TextChoices):
        PRIMARY = "primary"
        SHADOW = "shadow"

    version = models.OneToOneField(ModelVersion, on_delete=models.CASCADE, related_name="deployment")
    role = models.CharField(max_length=7, choices=Role.choices)
    since = models.DateTimeField(default=timezone.now)
    reason = models.TextField(blank=True)
    # A shadow's watermark: every transaction up to this id is scored by it or was stored before it
    # was deployed. None until the shadow scoring first runs, which starts it at ``since``.
    scored_through = models.BigIntegerField(null=True, blank=True)

    objects = DeploymentQuerySet.as_manager()

    class Meta:
        constraints = [
            # The database, not the code, guarantees a single primary.
            models.UniqueConstraint(fields=["role"], condition=Q(role="primary"), name="one_primary_deployment"),
        ]

    def __str__(self) -> str:
        return f"v{self.version.version} as {self.role}"


class ModelEvent(models.Model):
    """Audit trail: every change of a deployment, and every refusal, is a row here."""

    class Kind(models.TextChoices):
        ACTIVATE = "activate"
        ROLLBACK = "rollback"
        SHADOW = "shadow", "Put into shadow"
        UNSHADOW = "unshadow", "Shadowing stopped"
        REJECT = "reject"
        # An artifact failed verification when loaded; the version's status is left as it was.
        INTEGRITY = "integrity", "Integrity failure"
        SIGN = "sign", "Artifact signed"
        # Live traffic moved away from the training reference, or the alert rate from the expected.
        DRIFT = "drift"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    from_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="events_from"
    )
    to_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="events_to"
    )
    actor = models.CharField(max_length=150, help_text="User name, or 'scheduler' / 'command'")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.from_version} -> {self.to_version} by {self.actor}"


class TrainingRun(models.Model):
    class Trigger(models.TextChoices):
        SCHEDULE = "schedule"
        MANUAL = "manual"
        ADMIN = "admin"

    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    # A run whose heartbeat stopped was killed and is taken over.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    log = models.TextField(blank=True)
    error = models.TextField(blank=True)
    result_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="training_runs"
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            # Single flight across every worker and machine: a second running row cannot be inserted.
            models.UniqueConstraint(fields=["status"], condition=Q(status="running"), name="one_running_training_run"),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.trigger}, {self.status})"
