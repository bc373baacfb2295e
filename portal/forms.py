"""The portal's forms: sign-in by email, a new request, a reply. Files are checked against the desk's size cap."""

from django import forms
from django.conf import settings

from tickets.attachments import human_size, safe_filename
from tickets.models import SUBJECT_LENGTH, Message

from .submissions import is_submission_key

#: The most files one request or reply may carry.
MAX_FILES = 10


class SignInForm(forms.Form):
    email = forms.EmailField(label="Your work email address", max_length=254)


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True


class FilesField(forms.FileField):
    """Any number of files (Django's documented pattern for ``<input type=file multiple>``), each checked."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def clean(self, data, initial=None):
        files = [file for file in (data if isinstance(data, list | tuple) else [data]) if file]
        if len(files) > MAX_FILES:
            raise forms.ValidationError(f"{len(files)} files attached; at most {MAX_FILES} may go with one message.")
        cleaned = [super(FilesField, self).clean(file, initial) for file in files]
        limit = settings.ATTACHMENT_MAX_BYTES
        too_large = [file for file in cleaned if file.size > limit]
        if too_large:
            raise forms.ValidationError(
                [
                    f"{safe_filename(file.name)} is too large ({human_size(file.size)}); "
                    f"files may be at most {human_size(limit)}."
                    for file in too_large
                ]
            )
        return cleaned


class SubmissionForm(forms.Form):
    """What every portal form carries: its idempotency key, so a form sent twice is stored once."""

    key = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "files" in self.fields:  # the cap as it is now (settings are read per form, not at import)
            limit = human_size(settings.ATTACHMENT_MAX_BYTES)
            self.fields["files"].help_text = f"Up to {MAX_FILES} files, each at most {limit}."

    def clean_key(self):
        key = self.cleaned_data["key"]
        if not is_submission_key(key):
            raise forms.ValidationError("This form is out of date; please reload the page and send it again.")
        return key


class NewTicketForm(SubmissionForm):
    subject = forms.CharField(label="Subject", max_length=SUBJECT_LENGTH, help_text="A few words about what you need.")
    description = forms.CharField(
        label="Description",
        max_length=Message.MAX_BODY_LENGTH,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text="What happened, and what you expected. Error messages help.",
    )
    files = FilesField(label="Attachments (optional)")


class ReplyForm(SubmissionForm):
    body = forms.CharField(
        label="Your reply", max_length=Message.MAX_BODY_LENGTH, widget=forms.Textarea(attrs={"rows": 5})
    )
    files = FilesField(label="Attachments (optional)")
