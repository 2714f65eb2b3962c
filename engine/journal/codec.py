"""How journal records are stored: in blocks, one per commit (:class:`RawBlock`).

A block holds records ``first_seq`` to ``last_seq`` (consecutive, at most
:data:`MAX_BLOCK`). Its JSON text is one or more lines, each a JSON array (UTF-8,
compact) of records, each record itself an array, each line ended by a newline::

    [[seq, ts, "kind", "ref", {data}], [seq + 1, ...], ...]
    [[seq + 64, ...], ...]

Each line is one orjson call (:func:`encode_chunk`: the store encodes records in
chunks as they are appended, and the rest at commit), read back with orjson. When
orjson refuses a record (integers beyond 64 bits, keys that are not strings, lone
surrogates, nesting deeper than 255), the standard library writes it, and its line
starts with a space: such a line is read back with the standard library. orjson
writes NaN and infinities as ``null`` (strict JSON); the standard library writes
them as ``NaN`` and ``Infinity``, which it reads back. Neither writes a raw newline
inside a line.

The block stores ``size``, the length of its JSON text, and ``payload``: the text
itself (it starts with ``[`` or a space) or, when the text is at least :data:`COMPRESS_AT`
bytes long, its Zstandard frame (level 1, through pyarrow; it starts with the
Zstandard magic number): about 25 times smaller for a backtest's records, at about
0.1 µs a record.
The block's CRC32 (:func:`block_crc`) covers its range, ``size`` and ``payload``: a
block is written in one transaction, so it is either whole or absent, and a damaged
one is told apart from a good one as a whole.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from attrs import frozen

from engine.journal import Entry

__all__ = [
    "COMPRESS_AT",
    "KINDS",
    "MAX_BLOCK",
    "ZSTD_MAGIC",
    "Payload",
    "RawBlock",
    "RawEntry",
    "Record",
    "block_crc",
    "block_label",
    "compress",
    "decode_block",
    "encode_chunk",
    "encode_data",
    "encode_record",
    "json_type",
]

#: The entry kinds of the table in :mod:`engine.journal`.
KINDS = frozenset(
    {
        "config",
        "order",
        "denied",
        "cancel",
        "event",
        "fill",
        "state",
        "funding",
        "liquidation",
        "bar",
        "op",
        "reconcile",
    }
)

#: The most records one block holds (a larger commit writes several blocks, in one
#: transaction): what reading a journal holds in memory at once is bounded by it.
MAX_BLOCK = 4096

#: JSON texts at least this long are stored compressed (when that is shorter).
COMPRESS_AT = 8192

#: ``(seq, ts, kind, ref, data)``, as buffered by the store
Record = tuple[int, int, str, str, Any]

_ENCODER = json.JSONEncoder(separators=(",", ":"))

try:
    import orjson

    _dumps: Callable[..., bytes] | None = orjson.dumps
    _NEWLINE = orjson.OPT_APPEND_NEWLINE
    _loads: Callable[[bytes], Any] = orjson.loads
except ImportError:  # pragma: no cover - orjson is a dependency
    _dumps = None
    _NEWLINE = 0
    _loads = json.loads

#: the first four bytes of a Zstandard frame
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


# -- encoding --------------------------------------------------------------------------


def encode_data(data: Any) -> str:
    """``data`` as compact JSON text: orjson (UTF-8, strict JSON: NaN and infinities
    become ``null``), or the standard library for what orjson refuses (integers
    beyond 64 bits, keys that are not strings, lone surrogates, nesting deeper than
    255). ``TypeError`` when it is not JSON-ready at all (a ``Decimal``, an object)."""
    if _dumps is not None:
        try:
            return _dumps(data).decode()
        except TypeError:
            pass
    return _ENCODER.encode(data)


def encode_record(record: Record) -> bytes:
    """One record as the JSON array ``[seq, ts, kind, ref, data]`` (as
    :func:`encode_data` encodes). Raises ``TypeError``, ``ValueError`` (a circular
    reference) or ``RecursionError`` when it cannot be stored."""
    if _dumps is not None:
        try:
            return _dumps(record)
        except TypeError:
            pass
    return _ENCODER.encode(record).encode()  # ASCII: non-ASCII characters are escaped


def encode_chunk(records: Sequence[Record]) -> bytes:
    """Records (at least one) as one line of a block's text: a JSON array and a
    newline. One orjson call for all of them (the hot path); when orjson refuses
    something, record by record (:func:`encode_record`, which raises what it raises),
    and the line starts with a space: read it with the standard library (orjson would
    read integers beyond 64 bits as floats, and refuses ``NaN``)."""
    if _dumps is not None:
        try:
            return _dumps(records, option=_NEWLINE)
        except TypeError:
            pass
    return b" [" + b",".join([encode_record(r) for r in records]) + b"]\n"


@cache
def _zstd() -> Any:
    """pyarrow's Zstandard codec (level 1), or ``None`` when it has none."""
    try:
        import pyarrow as pa

        if pa.Codec.is_available("zstd"):
            return pa.Codec("zstd", compression_level=1)
    except Exception:  # pragma: no cover - pyarrow is a dependency, with zstd
        pass
    return None  # pragma: no cover


def compress(text: bytes) -> bytes | None:
    """``text`` as one Zstandard frame (level 1); ``None`` when pyarrow has no
    Zstandard codec."""
    codec = _zstd()
    if codec is None:  # pragma: no cover - pyarrow is a dependency, with zstd
        return None
    frame: bytes = codec.compress(text, asbytes=True)
    return frame


class Payload:
    """The payload of a block being written, a line of its text at a time: the text
    itself when it is shorter than ``COMPRESS_AT`` bytes, else its Zstandard frame."""

    __slots__ = ("_lines", "size")

    def __init__(self) -> None:
        #: the length of the text written so far
        self.size = 0
        self._lines: list[bytes] = []

    def write(self, line: bytes) -> None:
        """Add a line (one or more records, as :func:`encode_chunk` encodes them)."""
        self.size += len(line)
        self._lines.append(line)

    def finish(self) -> bytes:
        """The payload to store."""
        lines = self._lines
        text = lines[0] if len(lines) == 1 else b"".join(lines)
        if self.size >= COMPRESS_AT:
            frame = compress(text)
            if frame is not None:
                return frame
        return text


def _unpack(size: int, payload: bytes) -> bytes:
    """The JSON text of a stored payload (``ValueError`` when it cannot be had)."""
    if payload[:4] != ZSTD_MAGIC:
        return payload
    codec = _zstd()
    if codec is None:  # pragma: no cover - pyarrow is a dependency, with zstd
        raise ValueError("compressed (Zstandard), and pyarrow has no Zstandard codec")
    try:
        text: bytes = codec.decompress(payload, decompressed_size=size, asbytes=True)
    except (OSError, ValueError) as exc:
        raise ValueError(f"a damaged Zstandard frame ({exc})") from None
    return text


def block_crc(first_seq: int, last_seq: int, size: int, payload: bytes) -> int:
    """CRC32 (zlib) of a block: ``b"<first_seq> <last_seq> <size>\\n"``, then its payload."""
    return zlib.crc32(payload, zlib.crc32(b"%d %d %d\n" % (first_seq, last_seq, size)))


# -- decoding ---------------------------------------------------------------------------


def block_label(first_seq: int, last_seq: int) -> str:
    """``records 50-60 (block)`` (``record 7 (block)`` when it holds one)."""
    if first_seq == last_seq:
        return f"record {first_seq} (block)"
    return f"records {first_seq}-{last_seq} (block)"


def decode_block(first_seq: int, last_seq: int, size: int, payload: bytes) -> list[list[Any]]:
    """The records of a block as ``[seq, ts, kind, ref, data]`` lists, checked: lines
    of JSON arrays of such arrays, numbered ``first_seq`` to ``last_seq`` without gaps
    (``data`` may be any JSON value). ``ValueError`` saying what is wrong otherwise.
    Does not check the CRC."""
    text = _unpack(size, payload)
    if len(text) != size:
        raise ValueError(f"{len(text)} bytes of text, not {size}")
    lines = text.split(b"\n")
    if lines.pop() != b"":
        raise ValueError("the text does not end with a newline")
    records: list[Any] = []
    for number, line in enumerate(lines, 1):
        try:  # a line the standard library wrote starts with a space (see encode_chunk)
            chunk = json.loads(line) if line[:1] == b" " else _loads(line)
        except (ValueError, RecursionError) as exc:  # orjson's and Unicode errors included
            raise ValueError(f"line {number} is not JSON ({exc})") from None
        if type(chunk) is not list:
            raise ValueError(f"line {number} is a JSON {json_type(chunk)}, not an array")
        records += chunk
    seq = first_seq
    for record in records:
        if not (
            type(record) is list
            and len(record) == 5
            and type(record[1]) is int
            and type(record[2]) is str
            and type(record[3]) is str
        ):
            raise ValueError(f"record {seq} is not [seq, ts, kind, ref, data]")
        if type(record[0]) is not int or record[0] != seq:
            raise ValueError(f"record {seq} is numbered {record[0]!r}")
        seq += 1
    if seq - 1 != last_seq:
        held = f"records {first_seq}-{seq - 1}" if records else "no record"
        raise ValueError(f"holds {held}, not up to record {last_seq}")
    return records


@frozen
class RawBlock:
    """A block as stored: its range, stored CRC, JSON text size and payload."""

    first_seq: int
    last_seq: int
    crc: int
    size: int
    payload: bytes

    @property
    def label(self) -> str:
        """``records 50-60 (block)`` (``record 7 (block)`` when it holds one)."""
        return block_label(self.first_seq, self.last_seq)

    @property
    def crc_ok(self) -> bool:
        """True when the stored CRC matches the block."""
        return block_crc(self.first_seq, self.last_seq, self.size, self.payload) == self.crc

    def decode(self) -> list[list[Any]]:
        """Its records (:func:`decode_block`). Does not check the CRC."""
        return decode_block(self.first_seq, self.last_seq, self.size, self.payload)

    def records(self) -> list[RawEntry]:
        """Its records as :class:`RawEntry` values (:meth:`decode`)."""
        return [RawEntry(*r) for r in self.decode()]


@frozen
class RawEntry:
    """A record as decoded from its block: ``data`` is any JSON value (an object in a
    well-formed journal)."""

    seq: int
    ts: int
    kind: str
    ref: str
    data: Any

    @property
    def text(self) -> str:
        """``data`` as compact JSON text (:func:`encode_data`)."""
        return encode_data(self.data)

    def entry(self) -> Entry:
        """The :class:`~engine.journal.Entry` (``TypeError`` if ``data`` is not a JSON
        object)."""
        if type(self.data) is not dict:
            raise TypeError(f"data is a JSON {json_type(self.data)}, not an object")
        return Entry(self.seq, self.ts, self.kind, self.ref, self.data)


def json_type(value: Any) -> str:
    """The JSON type of a decoded value: ``object``, ``array``, ``string``..."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "null" if value is None else type(value).__name__
