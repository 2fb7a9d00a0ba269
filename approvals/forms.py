"""Forms of the manager's pages."""

from django import forms

from .models import Outcome

MAX_COMMENT = 5000


class DecisionForm(forms.Form):
    """Approve or reject, with a comment that a rejection requires."""

    outcome = forms.ChoiceField(choices=Outcome.choices)
    comment = forms.CharField(
        label="Comment",
        required=False,
        max_length=MAX_COMMENT,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Required when you reject; the workflow receives it.",
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("outcome") == Outcome.REJECTED and not cleaned.get("comment", "").strip():
            self.add_error("comment", "Say why you reject it: a comment is required.")
        return cleaned
