"""Forms of the review pages: the queue's filters, and a decision."""

from __future__ import annotations

from django import forms

from .models import Transaction


class QueueFilter(forms.Form):
    """The review queue's filters, read from the query string; each narrows the queue."""

    STATES = [("unreviewed", "Unreviewed"), ("fraud", "Confirmed fraud"), ("legitimate", "Legitimate"), ("all", "All")]
    PAGE_SIZES = [(25, "25"), (50, "50"), (100, "100"), (200, "200")]

    state = forms.ChoiceField(choices=STATES, required=False)
    flagged = forms.ChoiceField(choices=[("yes", "Flagged only"), ("all", "Flagged and not flagged")], required=False)
    version = forms.IntegerField(min_value=1, required=False, label="Model version")
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    amount_min = forms.FloatField(min_value=0, required=False, label="Amount from")
    amount_max = forms.FloatField(min_value=0, required=False, label="Amount to")
    per_page = forms.TypedChoiceField(choices=PAGE_SIZES, coerce=int, required=False, label="Per page")
    after = forms.RegexField(regex=r"^[01]:[0-9.eE+-]+:\d+$", required=False, widget=forms.HiddenInput)

    def clean_after(self) -> str:
        after = self.cleaned_data.get("after") or ""
        if after:
            try:
                score = float(after.split(":")[1])
            except ValueError:
                raise forms.ValidationError("not a page cursor") from None
            if not 0.0 <= score <= 1.0:
                raise forms.ValidationError("not a page cursor")
        return after

    def clean(self):
        data = super().clean()
        data["state"] = data.get("state") or "unreviewed"
        data["flagged"] = data.get("flagged") or "yes"
        data["per_page"] = data.get("per_page") or 25  # the first choice, which the form shows
        return data


class DecisionForm(forms.Form):
    label = forms.ChoiceField(choices=Transaction.Label.choices)
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class IdsField(forms.Field):
    """Transaction ids from checkboxes; whether each exists is checked in the labelling transaction."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[int]:
        try:
            return [int(v) for v in value or []]
        except (TypeError, ValueError):
            raise forms.ValidationError("not a transaction id") from None


class BulkDecisionForm(DecisionForm):
    ids = IdsField(error_messages={"required": "select at least one transaction"})


class ScoreFileForm(forms.Form):
    file = forms.FileField(label="CSV file")
