"""Read the two-image multipart upload of `POST /v1/verify` into memory (never onto disk), with strict limits."""
from __future__ import annotations

from collections.abc import AsyncIterator

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from edgefx.runtime.errors import InvalidImage, InvalidRequest, UnsupportedMediaType

IMAGE_FIELDS = ("image_a", "image_b")
MAX_PARTS = 8  # two images plus a little slack for clients that add e.g. a submit button field
MAX_HEADER_BYTES = 4096


def multipart_boundary(content_type: str | None, fields: str = "fields image_a and image_b") -> bytes:
    """The boundary of a multipart/form-data Content-Type; UnsupportedMediaType for anything else."""
    if not content_type:
        raise UnsupportedMediaType(f"send multipart/form-data with {fields}")
    media_type, params = parse_options_header(content_type)
    if media_type != b"multipart/form-data":
        raise UnsupportedMediaType(
            f"content type {media_type.decode('latin-1')!r} is not accepted; "
            f"send multipart/form-data with {fields}"
        )
    boundary = params.get(b"boundary")
    if not boundary:
        raise InvalidRequest("multipart/form-data without a boundary")
    return boundary


class _PartCollector:
    """Callbacks for python-multipart's streaming parser that keep each part's bytes in RAM."""

    repeatable: frozenset[str] = frozenset()  # fields that may be sent more than once

    def __init__(self) -> None:
        self.parts: dict[str, bytearray] = {}
        self._count = 0
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._disposition = b""
        self._name: str | None = None
        self._data = bytearray()

    def on_part_begin(self) -> None:
        self._count += 1
        if self._count > MAX_PARTS:
            raise InvalidRequest(f"too many multipart fields (at most {MAX_PARTS})")
        self._disposition = b""
        self._name = None
        self._data = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]
        self._check_header()

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]
        self._check_header()

    def on_header_end(self) -> None:
        if bytes(self._header_field).lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name")
        if name is None:
            raise InvalidRequest("a multipart part has no field name")
        self._name = name.decode("utf-8", "replace")
        if self._name not in self.repeatable and self._name in self.parts:
            raise InvalidRequest(f"field {self._name!r} is sent twice")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._name in IMAGE_FIELDS:  # other fields are counted but their bytes are dropped
            self._data += data[start:end]

    def on_part_end(self) -> None:
        if self._name is not None:
            self.parts[self._name] = self._data

    def _check_header(self) -> None:
        if len(self._header_field) + len(self._header_value) > MAX_HEADER_BYTES:
            raise InvalidRequest("a multipart part header is too long")


async def read_two_images(content_type: str | None, chunks: AsyncIterator[bytes]) -> tuple[bytes, bytes]:
    """(image_a, image_b) bytes from a streamed multipart/form-data body; typed errors for every malformed case."""
    boundary = multipart_boundary(content_type)
    collector = _PartCollector()
    callbacks = {
        name: getattr(collector, name)
        for name in (
            "on_part_begin",
            "on_part_data",
            "on_part_end",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
        )
    }
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    received = 0
    try:
        async for chunk in chunks:
            received += len(chunk)
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise InvalidRequest(f"malformed multipart body: {exc}") from None
    if received == 0:
        raise InvalidRequest("the request has no body; send fields image_a and image_b")
    missing = [name for name in IMAGE_FIELDS if name not in collector.parts]
    if missing:
        raise InvalidRequest(f"missing image field(s): {', '.join(missing)}; send both image_a and image_b")
    for name in IMAGE_FIELDS:
        if not collector.parts[name]:
            raise InvalidImage(f"{name} is empty (0 bytes)")
    return bytes(collector.parts["image_a"]), bytes(collector.parts["image_b"])


MAX_FORM_IMAGES = 10  # the most photos one enrolment takes (edgefx.gallery.access.MAX_ENROL_IMAGES)
MAX_TEXT_BYTES = 256


class _FormCollector(_PartCollector):
    """Keeps every `image` part (repeatable) and the named short text fields; drops the bytes of anything else."""

    repeatable = frozenset({"image"})

    def __init__(self, texts: tuple[str, ...]) -> None:
        super().__init__()
        self.texts = texts
        self.images: list[bytes] = []

    def on_part_begin(self) -> None:
        self._count += 1
        if self._count > MAX_FORM_IMAGES + len(self.texts) + 2:
            raise InvalidRequest(f"too many multipart fields (at most {MAX_FORM_IMAGES} images)")
        self._disposition, self._name, self._data = b"", None, bytearray()


    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._name == "image" or self._name in self.texts:
            self._data += data[start:end]
            if self._name != "image" and len(self._data) > MAX_TEXT_BYTES:
                raise InvalidRequest(f"field {self._name!r} is longer than {MAX_TEXT_BYTES} bytes")

    def on_part_end(self) -> None:
        if self._name == "image":
            if not self._data:
                raise InvalidImage(f"image {len(self.images) + 1} is empty (0 bytes)")
            self.images.append(bytes(self._data))
        elif self._name is not None:
            self.parts[self._name] = self._data


async def read_form(content_type: str | None, chunks: AsyncIterator[bytes],
                    texts: tuple[str, ...] = ()) -> tuple[list[bytes], dict[str, str]]:
    """(images, text fields) of a multipart/form-data body with one or more `image` fields: typed errors for every
    malformed case, nothing written to disk."""
    wanted = "a field image" + (f" and {', '.join(texts)}" if texts else "")
    boundary = multipart_boundary(content_type, wanted)
    collector = _FormCollector(texts)
    callbacks = {name: getattr(collector, name) for name in (
        "on_part_begin", "on_part_data", "on_part_end", "on_header_field", "on_header_value", "on_header_end",
        "on_headers_finished")}
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    try:
        async for chunk in chunks:
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise InvalidRequest(f"malformed multipart body: {exc}") from None
    if not collector.images:
        raise InvalidRequest("send at least one photo in a field named image")
    try:
        fields = {k: bytes(v).decode("utf-8") for k, v in collector.parts.items() if k in texts}
    except UnicodeDecodeError:
        raise InvalidRequest("a text field is not UTF-8") from None
    return collector.images, fields
