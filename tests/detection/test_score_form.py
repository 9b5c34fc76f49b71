from __future__ import annotations

import json

from detection.models import Transaction


def test_the_form_shows_the_decision(analyst_client, active_version, original_rows):
    response = analyst_client.post("/", {"transaction": json.dumps(original_rows["fraud"])})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="result"' in page
    assert "Fraud:" in page
    assert f"model v{active_version.version}" in page
    assert Transaction.objects.get().source == Transaction.Source.FORM


def test_the_form_names_the_bad_field(analyst_client, active_version, original_rows):
    response = analyst_client.post("/", {"transaction": json.dumps({**original_rows["legit"], "V2": "oops"})})
    assert response.status_code == 400
    assert "<code>V2</code> must be a number" in response.content.decode()
    assert Transaction.objects.count() == 0


def test_the_form_opens_with_an_example(analyst_client):
    response = analyst_client.get("/")
    assert response.status_code == 200
    assert "&quot;V28&quot;" in response.content.decode()


def test_the_form_is_csrf_protected(analyst, active_version, original_rows):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(analyst)
    response = strict.post("/", {"transaction": json.dumps(original_rows["legit"])})
    assert response.status_code == 403


def test_the_form_needs_a_signed_in_analyst(client, db, django_user_model):
    assert client.get("/").url.startswith("/accounts/login/")
    client.force_login(django_user_model.objects.create_user("nobody"))
    assert client.get("/").status_code == 403
