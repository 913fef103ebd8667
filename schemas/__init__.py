"""The hotline event contract: Avro schemas (``*.avsc``) and their codec."""

from schemas.codec import (
    EVENT_TYPE_HEADER,
    RECORD_NAMES,
    Decoded,
    DecodeError,
    DecodeReason,
    EncodeError,
    decode,
    encode,
    fingerprint,
    headers_for,
    register_writer_schema,
)

__all__ = [
    "EVENT_TYPE_HEADER",
    "RECORD_NAMES",
    "DecodeError",
    "DecodeReason",
    "Decoded",
    "EncodeError",
    "decode",
    "encode",
    "fingerprint",
    "headers_for",
    "register_writer_schema",
]
