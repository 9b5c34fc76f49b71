"""Optional auto-promotion: a shadow that beats the primary's stored decisions on the labelled
transactions both scored, by more than the retrain tolerance, becomes primary."""

from __future__ import annotations

from django.conf import settings

from modelops import retrain
from modelops.models import Deployment, ModelVersion
from modelops.services import deployments

from . import stored_rows
from .comparison import Comparison

CHUNK = 10_000


def labelled_figures(version_id: int) -> dict:
    """The comparison on every labelled transaction the shadow and the primary both scored."""
    comparison, after = Comparison(), 0
    while True:
        after, chunk = stored_rows.read_pairs(version_id, after=after, size=CHUNK, labelled_only=True)
        if not chunk:
            return comparison.figures()
        comparison.add(**chunk)


def consider(deployment: Deployment) -> tuple[bool, str] | None:
    """Promote the shadow if it wins: whether it was, and why; None when too few labels are known."""
    metric, tolerance = settings.RETRAIN_METRIC, settings.RETRAIN_TOLERANCE
    figures = labelled_figures(deployment.version_id)
    if figures["labelled"] < settings.SHADOW_MIN_LABELLED:
        return None
    ours, theirs = figures["challenger"].get(metric), figures["stored"].get(metric)
    if ours is None or theirs is None:
        return None
    version = deployment.version
    summary = (
        f"on {figures['labelled']} labelled transactions ({figures['labelled_frauds']} frauds) "
        f"v{version.version} {metric} {ours:.4f}, the primary's decisions {theirs:.4f}"
    )
    if ours - theirs <= tolerance:
        return False, f"v{version.version} stays in shadow: {summary}, not ahead by more than {tolerance}"
    primary = ModelVersion.objects.primary().first()
    deployments.activate_version(
        version_id=version.pk,
        actor=retrain.SCHEDULER,
        reason=f"auto-promotion (SHADOW_AUTO_PROMOTE): {summary}, ahead by more than {tolerance}",
        replacing=primary,
    )
    return True, f"v{version.version} promoted: {summary}"
