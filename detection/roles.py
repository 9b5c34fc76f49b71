"""The two roles as Django groups: analysts review; model managers also activate versions and scan."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

ANALYSTS = "Analysts"
MODEL_MANAGERS = "Model managers"

_ANALYST_PERMISSIONS = [
    ("detection", "review_transaction"),
    ("detection", "view_transaction"),
    ("detection", "view_prediction"),
    ("detection", "view_review"),
    ("modelops", "view_modelversion"),
    ("modelops", "view_modelevent"),
    ("modelops", "view_deployment"),
    ("modelops", "view_datafile"),
    ("modelops", "view_trainingrun"),
]
ROLES = {
    ANALYSTS: _ANALYST_PERMISSIONS,
    MODEL_MANAGERS: [*_ANALYST_PERMISSIONS, ("modelops", "activate_modelversion"), ("modelops", "scan_datafile")],
}


def ensure_roles(**_signal_kwargs) -> None:
    """Create the groups and add their missing permissions, taking none away; runs after migrate."""
    for name, wanted in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in wanted:
            permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if permission is not None:  # created by the same migrate run, before this
                group.permissions.add(permission)
