"""Files on messages: names and types safe to show."""

import pytest

from channel_adapters.base import AttachmentLimits, ReplyMode
from tests.helpers import upload
from tickets.attachments import check_reply_files, reply_limits, safe_filename


def test_safe_filename():
    assert safe_filename("C:\\Users\\ann\\report.pdf") == "report.pdf"
    assert safe_filename("..") == "attachment"
    assert safe_filename("") == "attachment"
    assert safe_filename("\u202eexe.pdf") == "exe.pdf"  # no right-to-left override tricks
    assert safe_filename("résumé 2026.pdf") == "résumé 2026.pdf"
    long = safe_filename("a" * 300 + ".xlsx")
    assert len(long) <= 150
    assert long.endswith("….xlsx")


INSTAGRAM_LIKE = ReplyMode(
    key="",
    label="Reply",
    max_length=1000,
    attachments=AttachmentLimits(
        max_files=3, max_bytes=100, by_type=(("image/", 10), ("video/", 50)), other_types=False
    ),
)


@pytest.mark.parametrize(
    ("name", "size", "content_type", "refusal"),
    [
        ("screen.png", 10, "image/png", ""),
        ("screen.png", 11, "image/png", "screen.png is too large (11 bytes); image files may be at most 10 bytes."),
        ("clip.mp4", 50, "video/mp4", ""),
        ("boot.log", 5, "text/plain", "boot.log (text/plain) cannot go with reply: it takes image, video only."),
    ],
)
def test_a_platform_takes_some_kinds_of_file_each_with_its_own_size(settings, name, size, content_type, refusal):
    settings.ATTACHMENT_MAX_BYTES = 1000
    assert check_reply_files([upload(name, b"x" * size, content_type)], INSTAGRAM_LIKE) == refusal


def test_the_desks_own_cap_holds_for_every_kind(settings):
    settings.ATTACHMENT_MAX_BYTES = 20
    assert reply_limits(INSTAGRAM_LIKE).max_bytes_for("video/mp4") == 20
    assert reply_limits(INSTAGRAM_LIKE).max_bytes_for("text/plain") is None
