"""Scored transactions, their predictions and the analysts' labels."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from modelops.ml.schema import FEATURES
from modelops.models import ModelVersion


class Transaction(models.Model):
    """One card transaction as it was scored. V1..V28 are one JSON list, as nothing filters on a
    PCA component; Time and Amount, which people search and sort, are columns."""

    class Source(models.TextChoices):
        API = "api"
        FORM = "form"
        BATCH = "batch"
        UPLOAD = "upload"

    class Label(models.TextChoices):
        FRAUD = "fraud", "confirmed fraud"
        LEGITIMATE = "legitimate", "legitimate"

    # NULL, not "": many transactions have no client id. Unique where given (Meta.constraints).
    external_id = models.CharField(  # noqa: DJ001
        max_length=100,
        null=True,
        blank=True,
        help_text="Client's id; a repeat from the same client returns the stored result",
    )
    # Ids are unique per client, so no client can read another's results.
    client = models.CharField(max_length=40, blank=True, default="", help_text="Who sent it: key:<id> or user:<id>")
    time = models.FloatField(help_text="Seconds since the first transaction of the client's data")
    amount = models.FloatField()
    v = models.JSONField(help_text="V1..V28 in order")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.API)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    label = models.CharField(max_length=12, choices=Label.choices, null=True, blank=True)  # noqa: DJ001
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_index=False
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # Partial: NULL (no client id, no review yet) is left out, so a scored row enters fewer indexes.
        constraints = [
            models.UniqueConstraint(
                fields=["client", "external_id"],
                condition=Q(external_id__isnull=False),
                name="transaction_client_external_id_unique",
            ),
        ]
        indexes = [
            models.Index(
                fields=["reviewed_by"], condition=Q(reviewed_by__isnull=False), name="transaction_reviewer_idx"
            ),
            # Partial: the unreviewed queue ("label IS NULL") must start from the queue's index,
            # which the planner would otherwise pass over for this one.
            models.Index(fields=["label"], condition=Q(label__isnull=False), name="transaction_labelled_idx"),
            models.Index(fields=["amount"], name="transaction_amount_idx"),
        ]
        permissions = [("review_transaction", "Can review transactions and label them")]

    def __str__(self) -> str:
        return f"transaction {self.pk}"

    @property
    def features(self) -> list[tuple[str, float]]:
        """(name, value) pairs in model order."""
        return list(zip(FEATURES, self.feature_row(), strict=True))

    def feature_row(self) -> list[float]:
        """Features in model order (schema.FEATURES)."""
        return [self.time, *self.v, self.amount]


class PredictionQuerySet(models.QuerySet):
    QUEUE_ORDER = ("-is_fraud", "-score", "-id")

    def primary(self) -> PredictionQuerySet:
        """The decisions that were answered: every read for analysts, counts, labels and replays starts here."""
        return self.filter(role=Prediction.Role.PRIMARY)

    def queue_order(self) -> PredictionQuerySet:
        return self.order_by(*self.QUEUE_ORDER)

    def flagged(self) -> PredictionQuerySet:
        # "IN (true)": Django writes "= true" as a bare "WHERE is_fraud", which SQLite cannot index.
        return self.filter(is_fraud__in=[True])


class Prediction(models.Model):
    """A version's score of a stored transaction: the primary's decided and was answered, a shadow's
    was scored after, off the request path, and never reaches an analyst or a client."""

    class Role(models.TextChoices):
        PRIMARY = "primary"
        SHADOW = "shadow"

    # Not indexed alone: the unique (transaction, model_version) index serves lookups by transaction.
    transaction = models.ForeignKey(Transaction, on_delete=models.CASCADE, related_name="predictions", db_index=False)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="predictions")
    role = models.CharField(max_length=7, choices=Role.choices, default=Role.PRIMARY)
    score = models.FloatField(help_text="Fraud probability")
    threshold = models.FloatField()
    is_fraud = models.BooleanField()
    # Stored: the model that raised an alert explains it, even after it is retired.
    contributions = models.JSONField(default=list, help_text="Top feature contributions (log-odds)")
    created_at = models.DateTimeField(default=timezone.now)

    objects = PredictionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # A shadow scores each transaction once, however often its scoring task runs.
            models.UniqueConstraint(fields=["transaction", "model_version"], name="prediction_once_per_version"),
        ]
        indexes = [
            # Must match PredictionQuerySet.QUEUE_ORDER, under primary().
            models.Index(fields=["role", "-is_fraud", "-score", "-id"], name="prediction_queue_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.score:.4f} by {self.model_version_id} for {self.transaction_id}"


class ApiKeyQuerySet(models.QuerySet):
    def usable(self) -> ApiKeyQuerySet:
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    """A client's key to the scoring API. Only a hash is stored, so a leaked database leaks no keys."""

    name = models.CharField(max_length=100, help_text="Who uses it, e.g. the client system's name")
    # In clear, to find the row without scanning every hash.
    prefix = models.CharField(max_length=12, unique=True)
    hashed = models.CharField(max_length=64, help_text="sha256 of the whole key")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Labels change what the model learns: only a key made for it may send them (POST /api/labels).
    can_label = models.BooleanField(default=False)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…{', revoked' if self.revoked_at else ''})"

    # DRF treats the authenticated client as request.user: these make a key behave as one.
    is_authenticated = True
    is_active = True


class Review(models.Model):
    """One decision, an analyst's or another system's (a chargeback feed), only ever added; the
    transaction's ``label`` is the latest one, an analyst's later decision winning over a report."""

    ANALYST = "analyst"

    transaction = models.ForeignKey(Transaction, on_delete=models.CASCADE, related_name="reviews")
    label = models.CharField(max_length=12, choices=Transaction.Label.choices)
    note = models.TextField(blank=True)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    # The record of who decided outlives the user's account.
    reviewer_name = models.CharField(max_length=150)
    created_at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=40, default=ANALYST, help_text="analyst, or the reporting system's source")
    reported_at = models.DateTimeField(null=True, blank=True, help_text="When the source reported it")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["transaction", "-created_at", "-id"], name="review_history_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.label} by {self.reviewer_name} on {self.transaction_id}"


class Backtest(models.Model):
    """One version scored on the stored transactions of a window, as a task; the stored decisions
    are never touched. Resumable: each chunk commits its scores with ``done_through`` and the
    comparison's state."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="backtests")
    since = models.DateTimeField()
    until = models.DateTimeField(help_text="Exclusive")
    threshold = models.FloatField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The window's id range, found when the run starts, and how far it got.
    first_id = models.BigIntegerField(null=True, blank=True)
    last_id = models.BigIntegerField(null=True, blank=True)
    done_through = models.BigIntegerField(null=True, blank=True)
    rows_total = models.IntegerField(default=0)
    rows_done = models.IntegerField(default=0)
    state = models.JSONField(default=dict, blank=True, help_text="The comparison so far")
    figures = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"backtest {self.pk} of v{self.version.version} ({self.status})"

    @property
    def progress(self) -> float:
        return (
            self.rows_done / self.rows_total if self.rows_total else (1.0 if self.status == self.Status.DONE else 0.0)
        )


class BacktestScore(models.Model):
    backtest = models.ForeignKey(Backtest, on_delete=models.CASCADE, related_name="scores", db_index=False)
    transaction = models.ForeignKey(Transaction, on_delete=models.CASCADE, related_name="+", db_index=False)
    score = models.FloatField()

    class Meta:
        constraints = [
            # Also the index the CSV export and the resumed run read by.
            models.UniqueConstraint(fields=["backtest", "transaction"], name="backtest_score_once"),
        ]

    def __str__(self) -> str:
        return f"{self.score:.4f} for {self.transaction_id} in backtest {self.backtest_id}"


class MonitorWindow(models.Model):
    """One closed window of a deployed version's traffic, summarised: recomputed when late labels
    arrive for its transactions."""

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="monitor_windows")
    role = models.CharField(max_length=7, choices=Prediction.Role.choices)
    start = models.DateTimeField()
    end = models.DateTimeField()
    transactions = models.IntegerField(default=0)
    alerts = models.IntegerField(default=0)
    score_quantiles = models.JSONField(default=dict, blank=True, help_text="p50, p90, p99")
    # None without a reference to compare with.
    score_psi = models.FloatField(null=True, blank=True)
    feature_psi = models.JSONField(default=dict, blank=True)
    top_feature = models.CharField(max_length=10, blank=True)
    top_feature_psi = models.FloatField(null=True, blank=True)
    decided_alerts = models.IntegerField(default=0, help_text="Alerts with a label")
    confirmed_alerts = models.IntegerField(default=0)
    confirmed_amount = models.FloatField(default=0.0)
    missed_frauds = models.IntegerField(default=0, help_text="Confirmed frauds below the threshold")
    missed_amount = models.FloatField(default=0.0)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-start"]
        constraints = [
            models.UniqueConstraint(fields=["version", "role", "start"], name="monitor_window_once"),
        ]

    def __str__(self) -> str:
        return f"v{self.version.version} {self.role} from {self.start:%Y-%m-%d %H:%M}"

    @property
    def alert_rate(self) -> float | None:
        return self.alerts / self.transactions if self.transactions else None

    @property
    def precision(self) -> float | None:
        return self.confirmed_alerts / self.decided_alerts if self.decided_alerts else None

    @property
    def drift(self) -> float | None:
        """The larger of the score's and the worst feature's PSI."""
        known = [v for v in (self.score_psi, self.top_feature_psi) if v is not None]
        return max(known) if known else None


class LabelFile(models.Model):
    """A CSV of labels from the bucket's labels/ prefix (a chargeback feed), handled once per content."""

    class Status(models.TextChoices):
        APPLIED = "applied"
        REJECTED = "rejected"

    key = models.CharField(max_length=500)
    etag = models.CharField(max_length=200, help_text="ETag on S3, sha256 on local folders")
    status = models.CharField(max_length=8, choices=Status.choices)
    rows = models.IntegerField(default=0)
    recorded = models.IntegerField(default=0)
    repeated = models.IntegerField(default=0, help_text="Labels the feed had given before")
    error = models.TextField(blank=True, help_text="Exact reason and line of a refused file")
    processed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-processed_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["key", "etag"], name="labelfile_once_per_content")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status})"


class BatchJob(models.Model):
    """A batch scored off the request path (POST /api/batches): its validated input is stored as
    chunks, which a task scores in order, each chunk's transactions committed together with the
    watermark ``chunks_done``, so a run killed half-way resumes where it stopped."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    class Format(models.TextChoices):
        JSON = "json", "JSON"
        CSV = "csv", "CSV"

    # Unguessable: the id is all a client needs to ask for a job, and another client's is a 404.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.CharField(max_length=40, blank=True, default="", help_text="Who sent it: key:<id> or user:<id>")
    input_format = models.CharField(max_length=4, choices=Format.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    rows_total = models.IntegerField()
    chunk_rows = models.IntegerField(help_text="Rows per chunk; the last may hold fewer")
    chunks_total = models.IntegerField()
    chunks_done = models.IntegerField(default=0, help_text="Chunks scored: each is stored with its move")
    rows_scored = models.IntegerField(default=0)
    attempts = models.IntegerField(default=0, help_text="Runs started since a chunk was last scored")
    error = models.TextField(blank=True, help_text="Why it failed, or why the last run stopped")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    # A run's start and every chunk move it; the sweep requeues a job it has not moved for a while.
    progress_at = models.DateTimeField(default=timezone.now)
    requeued_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Partial: the sweep reads unfinished jobs only, a few among every job ever run.
            models.Index(
                fields=["progress_at"],
                condition=Q(status__in=["queued", "running"]),
                name="batchjob_unfinished_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"batch {self.pk} ({self.status}, {self.rows_scored} of {self.rows_total})"


class BatchChunk(models.Model):
    """A slice of a job's input in row order; once scored, its answers in place of its features."""

    job = models.ForeignKey(BatchJob, on_delete=models.CASCADE, related_name="chunks", db_index=False)
    number = models.IntegerField()
    first_row = models.IntegerField(help_text="The job's row number of its first row, from 0")
    rows = models.IntegerField()
    # float64 in schema order (exact, and a quarter of the JSON's size); emptied once scored, as
    # the stored transactions then hold the features.
    values = models.BinaryField()
    external_ids = models.JSONField(null=True, blank=True, help_text="Per row, or null if the chunk has none")
    results = models.JSONField(
        null=True,
        blank=True,
        help_text="Once scored, per row: transaction id, is_fraud, probability, threshold, version, repeated",
    )

    class Meta:
        ordering = ["job", "number"]
        constraints = [
            # Also the index that the task and the results pages read a job's chunks by.
            models.UniqueConstraint(fields=["job", "number"], name="batchchunk_once"),
        ]

    def __str__(self) -> str:
        return f"chunk {self.number} of batch {self.job_id}"
