"""Files on messages: names and types safe to show."""

from tickets.attachments import safe_filename


def test_safe_filename():
    assert safe_filename("C:\\Users\\ann\\report.pdf") == "report.pdf"
    assert safe_filename("..") == "attachment"
    assert safe_filename("") == "attachment"
    assert safe_filename("\u202eexe.pdf") == "exe.pdf"  # no right-to-left override tricks
    assert safe_filename("résumé 2026.pdf") == "résumé 2026.pdf"
    long = safe_filename("a" * 300 + ".xlsx")
    assert len(long) <= 150
    assert long.endswith("….xlsx")
