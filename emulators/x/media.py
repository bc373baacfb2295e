"""Media on posts and DMs: what ``expansions=attachments.media_keys`` puts in ``includes.media``, and the bytes.

On X a media key is "<type code>_<media id>" (3 photo, 7 video, 16 animated GIF). Photos are
served from pbs.twimg.com (``/media/<id>.jpg``) and video variants from video.twimg.com, to
anyone; media sent in DMs comes from ton.twitter.com (``/1.1/ton/data/dm/<event>/<media>/...``)
and only to OAuth 1.0a-signed requests. Here every file is served at the emulator's own URL,
under ``/media/`` or ``/1.1/ton/data/dm/`` (DM videos included), with the same rule.

A video's or GIF's ``variants`` are the files given for it, in the order given; an HLS playlist
(``application/x-mpegURL``) has no ``bit_rate``, as on X. Only the fields asked for in
``media.fields`` are rendered (``media_key`` and ``type`` always).
"""

import mimetypes
from dataclasses import dataclass

PUBLIC_PREFIX = "/media/"
DM_PREFIX = "/1.1/ton/data/dm/"
TYPE_CODES = {"photo": "3", "video": "7", "animated_gif": "16"}
MAX_ALT_TEXT = 1000  # X's limit for alt text
HLS = "application/x-mpegURL"


@dataclass(frozen=True)
class MediaFile:
    content_type: str
    data: bytes
    signed_only: bool  # DM media: OAuth 1.0a-signed requests only


@dataclass(frozen=True)
class Variant:
    content_type: str
    path: str
    bit_rate: int | None


@dataclass(frozen=True)
class Media:
    key: str
    type: str
    photo_path: str | None = None
    preview_path: str | None = None
    variants: tuple[Variant, ...] = ()
    alt_text: str | None = None
    width: int | None = None
    height: int | None = None

    def paths(self) -> list[str]:
        return [p for p in (self.photo_path, self.preview_path, *(v.path for v in self.variants)) if p]

    def render(self, fields: set[str], base_url: str) -> dict:
        data = {"media_key": self.key, "type": self.type}
        if "url" in fields and self.photo_path:
            data["url"] = base_url + self.photo_path
        if "preview_image_url" in fields and self.preview_path:
            data["preview_image_url"] = base_url + self.preview_path
        if "variants" in fields and self.type != "photo":
            data["variants"] = [
                {
                    **({"bit_rate": v.bit_rate} if v.bit_rate is not None else {}),
                    "content_type": v.content_type,
                    "url": base_url + v.path,
                }
                for v in self.variants
            ]
        if "alt_text" in fields and self.alt_text:
            data["alt_text"] = self.alt_text
        for name in ("width", "height"):
            if name in fields and getattr(self, name):
                data[name] = getattr(self, name)
        return data


def _extension(content_type: str) -> str:
    if content_type == HLS:
        return "m3u8"
    return {"image/jpeg": "jpg"}.get(content_type) or (mimetypes.guess_extension(content_type) or ".bin")[1:]


class MediaLibrary:
    """Media by key and files by path. The caller (the store) holds its lock."""

    def __init__(self):
        self._media: dict[str, Media] = {}
        self._files: dict[str, MediaFile] = {}

    def add(self, spec: dict, media_id: int, dm_event_id: int | None = None) -> Media:
        """One item from a control call: {"type", "data" (photo bytes), "content_type"?, "preview"? (bytes),
        "variants"? [{"data", "content_type", "bit_rate"?}], "alt_text"?, "width"?, "height"?}."""
        kind = spec.get("type", "photo")
        if kind not in TYPE_CODES:
            raise ValueError(f"media type must be one of {sorted(TYPE_CODES)}")
        alt_text = spec.get("alt_text")
        if alt_text is not None and (not isinstance(alt_text, str) or len(alt_text) > MAX_ALT_TEXT):
            raise ValueError(f"alt_text must be a string of at most {MAX_ALT_TEXT} characters")
        signed = dm_event_id is not None
        prefix = f"{DM_PREFIX}{dm_event_id}/{media_id}/" if signed else PUBLIC_PREFIX
        files: dict[str, MediaFile] = {}

        def keep(name: str, data, content_type: str) -> str:
            if not isinstance(data, bytes):
                raise ValueError("media content is required")
            path = f"{prefix}{name}.{_extension(content_type)}"
            files[path] = MediaFile(content_type, data, signed)
            return path

        photo_path = preview_path = None
        variants = []
        if kind == "photo":
            photo_path = keep(str(media_id), spec.get("data"), spec.get("content_type") or "image/jpeg")
        else:
            if spec.get("preview") is not None:
                preview_path = keep(f"{media_id}-thumb", spec["preview"], "image/jpeg")
            for variant in spec.get("variants") or ():
                content_type = variant.get("content_type") or "video/mp4"
                bit_rate = None if content_type == HLS else int(variant.get("bit_rate") or 0)
                name = f"{media_id}-{'hls' if bit_rate is None else bit_rate}"
                variants.append(Variant(content_type, keep(name, variant.get("data"), content_type), bit_rate))
        media = Media(
            key=f"{TYPE_CODES[kind]}_{media_id}",
            type=kind,
            photo_path=photo_path,
            preview_path=preview_path,
            variants=tuple(variants),
            alt_text=alt_text,
            width=spec.get("width"),
            height=spec.get("height"),
        )
        self._media[media.key] = media
        self._files.update(files)
        return media

    def get(self, key: str) -> Media | None:
        return self._media.get(key)

    def file(self, path: str) -> MediaFile | None:
        return self._files.get(path)

    def delete(self, key: str) -> bool:
        """Forget a media item: X then leaves it out of includes, and its files answer 404."""
        media = self._media.pop(key, None)
        if media is None:
            return False
        for path in media.paths():
            self._files.pop(path, None)
        return True


def is_media_path(path: str) -> bool:
    return path.startswith((PUBLIC_PREFIX, DM_PREFIX))
