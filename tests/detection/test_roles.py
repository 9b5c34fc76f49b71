"""The Analysts and Model managers groups that migrate creates."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

from detection.roles import ANALYSTS, MODEL_MANAGERS, ensure_roles


def codenames(group_name: str) -> set[str]:
    return set(Group.objects.get(name=group_name).permissions.values_list("codename", flat=True))


def test_migrate_creates_both_roles(db):
    assert "review_transaction" in codenames(ANALYSTS)
    assert "activate_modelversion" not in codenames(ANALYSTS)
    assert {"review_transaction", "activate_modelversion", "scan_datafile"} <= codenames(MODEL_MANAGERS)
    assert "scan_datafile" not in codenames(ANALYSTS)


def test_ensuring_the_roles_again_keeps_what_an_operator_added(db):
    extra = Permission.objects.get(codename="view_apikey")
    Group.objects.get(name=ANALYSTS).permissions.add(extra)
    ensure_roles()
    ensure_roles()
    assert Group.objects.filter(name=ANALYSTS).count() == 1
    assert "view_apikey" in codenames(ANALYSTS)


def test_the_roles_give_their_members_the_permissions(analyst, manager):
    assert analyst.has_perm("detection.review_transaction")
    assert not analyst.has_perm("modelops.activate_modelversion")
    assert manager.has_perm("modelops.activate_modelversion")
