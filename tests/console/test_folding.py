"""Long messages are folded on the ticket page: the start, and "Show all" for the whole text."""

import pytest

from console.folding import FOLD_CHARS, FOLD_LINES, preview
from tests.helpers import detail_url, text_of
from tickets.models import Message


def test_short_messages_are_not_folded():
    assert preview("x" * FOLD_CHARS) is None
    assert preview("line\n" * (FOLD_LINES - 1)) is None


def test_a_long_message_is_cut_on_a_word_near_the_limit():
    words = "printer " * 1000
    start = preview(words)
    assert FOLD_CHARS - 200 <= len(start) <= FOLD_CHARS
    assert words.startswith(start)
    assert start.endswith("printer")


def test_many_short_lines_are_folded_after_the_last_shown_line():
    start = preview("".join(f"line {n}\n" for n in range(100)))
    assert start.splitlines() == [f"line {n}" for n in range(FOLD_LINES)]


@pytest.mark.parametrize(
    ("unit", "whole"),
    [
        ("e\u0301", "é as e + combining acute"),
        ("\U0001f468\u200d\U0001f469\u200d\U0001f467", "a family emoji joined by ZWJs"),
        ("\U0001f44d\U0001f3fd", "a thumb with a skin tone"),
        ("\U0001f1eb\U0001f1f7", "a flag (two regional indicators)"),
        ("\u2764\ufe0f", "a heart with its emoji variation selector"),
    ],
)
def test_a_cut_without_spaces_never_splits_a_character_as_people_see_it(unit, whole):
    for offset in range(len(unit) + 1):  # every alignment of the units against the limit
        text = "a" * offset + unit * (2 * FOLD_CHARS // len(unit))
        start = preview(text)
        rest = start[offset:]
        assert rest == unit * (len(rest) // len(unit)), whole


@pytest.mark.django_db
def test_the_ticket_page_folds_a_long_message_and_escapes_after_cutting(agent_client, ticket):
    """Cut before escaping: a run of "&" cut at the limit is escaped whole (no "&am" left dangling)."""
    body = "&" * 5000 + "<b>end</b>"
    Message.objects.filter(ticket=ticket).update(body=body)
    html = agent_client.get(detail_url(ticket)).content.decode()
    fold = html[html.index('<div class="message-fold">') :]
    shown, hidden = fold.split('<details class="message-full">', 1)
    assert shown.count("&amp;") == FOLD_CHARS
    assert "&amp;…</div>" in shown
    assert shown.replace("&amp;", "").count("&") == 0
    assert "<b>" not in html
    assert "&lt;b&gt;end&lt;/b&gt;" in hidden
    assert text_of(hidden).startswith("Show allShow less (5,010 characters)")
