"""Which stored files the console plays in the page (voice notes, videos) rather than only offering them as
downloads. Decided by the type the platform declared, from a fixed list: audio and video elements never run
script, and the download view serves these types, and only these besides raster images, inline."""

from tickets.attachments import safe_content_type
from tickets.models import Attachment

#: Voice notes as Meta's platforms send them (WhatsApp: Opus in Ogg; Messenger: MP4/AAC), and MP3.
AUDIO_TYPES = frozenset({"audio/ogg", "audio/mpeg", "audio/mp4", "audio/aac", "audio/amr"})
VIDEO_TYPES = frozenset({"video/mp4"})

AUDIO, VIDEO = "audio", "video"


def player_for(attachment) -> str:
    """``AUDIO`` or ``VIDEO`` for a stored file of a playable type, else "" (its type's parameters, such as
    ``codecs=opus``, are ignored)."""
    if attachment.status != Attachment.Status.STORED:
        return ""
    content_type = safe_content_type(attachment.content_type)
    if content_type in AUDIO_TYPES:
        return AUDIO
    if content_type in VIDEO_TYPES:
        return VIDEO
    return ""
