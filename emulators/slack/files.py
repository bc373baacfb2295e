"""Files in the emulated workspace: what messages carry as ``files[]``, and the external upload flow.

Slack's upload is three steps (https://api.slack.com/methods/files.getUploadURLExternal): the
method hands out a file id and an ``upload_url``; the client POSTs the bytes there (raw, as
slack_sdk does, or as multipart form data); ``files.completeUploadExternal`` then shares the files,
optionally into a channel or thread. Downloads of ``url_private`` need the bearer token.
"""

import itertools
import mimetypes
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP

FILES_PREFIX = "/files-pri/"
UPLOAD_PREFIX = "/upload/v1/"


@dataclass
class SlackFile:
    id: str
    name: str
    title: str
    user: str
    mimetype: str = "application/octet-stream"
    data: bytes | None = None  # None until the bytes are uploaded
    completed: bool = False
    created: int = field(default_factory=lambda: int(time.time()))

    def render(self, team_id: str, base_url: str) -> dict:
        quoted = urllib.parse.quote(self.name)
        private = f"{base_url}{FILES_PREFIX}{team_id}-{self.id}/{quoted}"
        extension = self.name.rpartition(".")[2].lower() if "." in self.name else "binary"
        return {
            "id": self.id,
            "created": self.created,
            "timestamp": self.created,
            "name": self.name,
            "title": self.title,
            "mimetype": self.mimetype,
            "filetype": extension,
            "pretty_type": extension.upper(),
            "user": self.user,
            "user_team": team_id,
            "editable": False,
            "size": len(self.data or b""),
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": True,
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": private,
            "url_private_download": f"{base_url}{FILES_PREFIX}{team_id}-{self.id}/download/{quoted}",
            "permalink": f"https://emulator.slack.com/files/{self.user}/{self.id}/{quoted}",
        }


class FileStore:
    """Files by id and pending uploads by upload id. The caller (the workspace) holds its lock."""

    def __init__(self):
        self._files: dict[str, SlackFile] = {}
        self._uploads: dict[str, str] = {}  # upload id -> file id
        self._ids = itertools.count(1)

    def add(
        self, user: str, name: str, data: bytes, mimetype: str | None = None, title: str | None = None
    ) -> SlackFile:
        file = SlackFile(
            id=f"F{next(self._ids):08d}",
            name=name,
            title=title or name,
            user=user,
            mimetype=mimetype or mimetypes.guess_type(name)[0] or "application/octet-stream",
            data=data,
            completed=True,
        )
        self._files[file.id] = file
        return file

    def start_upload(self, user: str, filename: str, length: int) -> tuple[SlackFile, str]:
        file = self.add(user, filename, b"")
        file.data, file.completed = None, False
        upload_id = uuid.uuid4().hex
        self._uploads[upload_id] = file.id
        return file, upload_id

    def receive(self, upload_id: str, data: bytes) -> bool:
        file_id = self._uploads.pop(upload_id, None)
        if file_id is None:
            return False
        self._files[file_id].data = data
        return True

    def awaits_completion(self, file_id: str) -> bool:
        """Whether the file's bytes came and it was not completed yet."""
        file = self._files.get(file_id)
        return file is not None and file.data is not None and not file.completed

    def complete(self, file_id: str, title: str | None) -> SlackFile:
        file = self._files[file_id]
        file.completed = True
        if title:
            file.title = title
        return file

    def get(self, file_id: str) -> SlackFile | None:
        file = self._files.get(file_id)
        return file if file is not None and file.completed else None


def upload_body(content_type: str, body: bytes) -> bytes:
    """The file's bytes from an upload POST: the body itself, or the first file part of a multipart form."""
    if not content_type.startswith("multipart/form-data"):
        return body
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    for part in message.iter_parts():
        if part.get_filename() is not None or part.get_param("name", header="content-disposition") == "file":
            return part.get_payload(decode=True) or b""
    return b""


def parse_file_path(path: str) -> tuple[str, str, str] | None:
    """(team id, file id, file name) from ``/files-pri/<team>-<file>/[download/]<name>``, or None."""
    parts = path[len(FILES_PREFIX) :].split("/")
    if parts[1:2] == ["download"]:
        del parts[1]
    if len(parts) != 2 or "-" not in parts[0]:
        return None
    team_id, _, file_id = parts[0].partition("-")
    return team_id, file_id, urllib.parse.unquote(parts[1])
