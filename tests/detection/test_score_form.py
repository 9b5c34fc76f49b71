from __future__ import annotations

import json

from detection.models import Transaction


def test_the_form_shows_the_decision(client, active_version, original_rows):
    response = client.post("/", {"transaction": json.dumps(original_rows["fraud"])})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="result"' in page
    assert "Fraud:" in page
    assert f"model v{active_version.version}" in page
    assert Transaction.objects.get().source == Transaction.Source.FORM


def test_the_form_names_the_bad_field(client, active_version, original_rows):
    response = client.post("/", {"transaction": json.dumps({**original_rows["legit"], "V2": "oops"})})
    assert response.status_code == 400
    assert "<code>V2</code> must be a number" in response.content.decode()
    assert Transaction.objects.count() == 0


def test_the_form_opens_with_an_example(client, db):
    response = client.get("/")
    assert response.status_code == 200
    assert "&quot;V28&quot;" in response.content.decode()


def test_the_form_is_csrf_protected(db, active_version, original_rows):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/", {"transaction": json.dumps(original_rows["legit"])})
    assert response.status_code == 403
