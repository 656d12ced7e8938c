"""A strict ``multipart/form-data`` reader that keeps binary parts byte for byte."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser


class MultipartError(ValueError):
    """The body is not well-formed multipart."""


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    content_type: str
    data: bytes


def parse(headers: Message, body: bytes) -> dict[str, Part]:
    """The parts by field name; a name sent twice is an error, as is a missing boundary."""
    if headers.get_content_type() != "multipart/form-data":
        raise MultipartError("the body must be multipart/form-data")
    boundary = headers.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise MultipartError("the multipart boundary is missing")
    delimiter = b"--" + boundary.encode()
    sections = body.split(delimiter)
    if len(sections) < 3 or not sections[-1].startswith(b"--"):
        raise MultipartError("the multipart body is not closed")
    parts: dict[str, Part] = {}
    for section in sections[1:-1]:
        if not section.startswith(b"\r\n") or not section.endswith(b"\r\n"):
            raise MultipartError("a multipart section is not delimited by CRLF")
        head, separator, data = section[2:-2].partition(b"\r\n\r\n")
        if not separator:
            raise MultipartError("a multipart section has no header end")
        part_headers = BytesHeaderParser().parsebytes(head + b"\r\n\r\n")
        name = part_headers.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise MultipartError("a multipart section has no field name")
        if name in parts:
            raise MultipartError(f"the field {name} is sent twice")
        parts[name] = Part(
            name=name,
            filename=part_headers.get_filename(),
            content_type=part_headers.get_content_type()
            if part_headers.get("Content-Type")
            else "text/plain",
            data=data,
        )
    return parts
