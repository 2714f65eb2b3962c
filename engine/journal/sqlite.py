"""The built-in journal store: one SQLite file in WAL mode.

Format version 2: one table ``blocks(first_seq INTEGER PRIMARY KEY, last_seq, crc,
size, payload)``, one row (a block, :mod:`engine.journal.codec`) per commit: the
records ``first_seq``-``last_seq`` as lines of JSON arrays, compressed (Zstandard)
when long, and the CRC32 of the block; and a ``meta`` table naming the format and
its version. Version 1 (one row per record) is refused with a message saying so. A
commit of more than :data:`~engine.journal.codec.MAX_BLOCK` records writes several
blocks, in one transaction.

:meth:`SqliteJournal.append` is on a backtest's hot path: it buffers, and encodes
every ``CHUNK`` entries with one orjson call (so the data is encoded while it is
still in the CPU's caches, and memory stays flat); :meth:`SqliteJournal.commit`
encodes the rest and writes each block with one INSERT (its own transaction), which
only succeeds when the block continues the file exactly where it ends: a commit of
a few entries (a paper run's bar) is one statement.

Torn writes. Opening a journal first looks at the files themselves, before SQLite
does (SQLite silently discards an incomplete tail of its write-ahead log):

* a write-ahead log whose size is not its 32-byte header plus whole frames
  (``(size - 32) % (page_size + 24) != 0``), or whose last frames are a
  transaction without its commit frame, lost its last (uncommitted) write: SQLite
  keeps every committed transaction before it; the log is then checkpointed and
  emptied so the damage is reported once;
* a database file that is not whole pages, or shorter than its header says, is
  checked (``PRAGMA quick_check``); when it is damaged (or any query says it is
  malformed, or its last block fails its CRC check), every readable block is
  copied, in sequence order, stopping at the first unreadable, out-of-sequence or
  CRC-failing one, into a fresh file; the damaged file is kept as
  ``<name>.damaged-<n>`` (its log as ``...-wal``).

A block is written in one transaction: it is whole or absent. Either way
``store.recovered`` says what was found and the last record kept, and the sequence
continues from there.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from engine.config import positive
from engine.errors import JournalError
from engine.journal import Entry, Recovered
from engine.journal.codec import (
    MAX_BLOCK,
    Payload,
    RawBlock,
    RawEntry,
    Record,
    block_crc,
    block_label,
    decode_block,
    encode_chunk,
    encode_record,
    json_type,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "SqliteJournal",
    "SqliteJournalConfig",
    "inspect_database",
    "inspect_wal",
    "scan",
]

#: ``meta.format`` of every journal file, and the newest ``meta.version`` understood.
FORMAT = "engine-journal"
FORMAT_VERSION = 2
#: ``PRAGMA application_id`` of a journal file ("ENGJ"), for tools such as ``file``.
APPLICATION_ID = 0x454E474A

SYNCHRONOUS = ("full", "normal")

#: About how many records one query reads when streaming (blocks starting within the
#: next ``BATCH`` records): ``entries()`` holds at most ``BATCH + MAX_BLOCK`` at once.
BATCH = 1000

#: Appended entries are encoded this many at a time, as they are appended (the rest
#: at commit): one orjson call each, while the data is still in the CPU's caches
#: (holding more entries back costs more than encoding them in small chunks).
CHUNK = 64
_NEVER = 1 << 62

_SQLITE_MAGIC = b"SQLite format 3\x00"
_WAL_MAGIC = (0x377F0682, 0x377F0683)
_WAL_HEADER = 32
_FRAME_HEADER = 24

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE blocks (first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL,"
    " crc INTEGER NOT NULL, size INTEGER NOT NULL, payload BLOB NOT NULL)",
)
#: One statement: a commit of one block is one (implicit) transaction.
_INSERT = "INSERT INTO blocks (first_seq, last_seq, crc, size, payload) VALUES (?, ?, ?, ?, ?)"
_NOT_AT_END = "the block does not start where the journal ends"
#: A block goes only where the file ends (it continues the last block, or is the
#: first): a second store writing the file fails instead of interleaving records.
#: A temporary trigger: the writing connection's, not part of the file.
_CONTIGUOUS = (
    "CREATE TEMP TRIGGER IF NOT EXISTS blocks_contiguous BEFORE INSERT ON main.blocks"
    " WHEN NEW.first_seq != 1 + coalesce("
    "(SELECT last_seq FROM main.blocks ORDER BY first_seq DESC LIMIT 1), 0)"
    f" BEGIN SELECT RAISE(ABORT, '{_NOT_AT_END}'); END"
)
_BLOCK = "SELECT first_seq, last_seq, crc, size, payload FROM blocks"
_LAST_BLOCK = f"{_BLOCK} ORDER BY first_seq DESC LIMIT 1"


def _synchronous(_inst: object, _attr: object, value: str) -> None:
    if value not in SYNCHRONOUS:
        raise ValueError(f"must be 'full' or 'normal', got {value!r}")


def _non_empty(_inst: object, _attr: object, value: str) -> None:
    if not value.strip():
        raise ValueError("must not be empty")


@attrs.frozen
class SqliteJournalConfig:
    """``[journal] type = "sqlite"``: the file (relative to the working directory
    unless absolute; missing folders are created), how hard each commit syncs
    (``full``: fsync per commit; ``normal``: a power loss may lose the last commits,
    never corrupt) and how many commits between two (passive) WAL checkpoints."""

    path: str = attrs.field(validator=_non_empty)
    synchronous: str = attrs.field(default="full", validator=_synchronous)
    checkpoint_every: int = attrs.field(default=1000, validator=positive)


class _Damaged(Exception):
    """The database file is malformed (internal: triggers the salvage)."""


# -- looking at the files before SQLite does ----------------------------------------------


def _page_size(raw: int) -> int | None:
    size = 65536 if raw == 1 else raw
    return size if 512 <= size <= 65536 and size & (size - 1) == 0 else None


def inspect_wal(path: str | os.PathLike[str]) -> str | None:
    """What is wrong with the end of the write-ahead log of the journal ``path``
    (``None``: nothing, or no log). Reads the log's header and frame headers only."""
    wal = Path(f"{os.fspath(path)}-wal")
    try:
        size = wal.stat().st_size
    except FileNotFoundError:
        return None
    if size == 0:
        return None
    prefix = "torn write at the end of the write-ahead log"
    if size < _WAL_HEADER:
        return f"{prefix} (an incomplete {_WAL_HEADER}-byte header, {size} bytes written)"
    with wal.open("rb") as f:
        magic, _version, raw_page, _ckpt, salt1, salt2 = struct.unpack(">6I", f.read(24))
        page_size = _page_size(raw_page)
        if magic not in _WAL_MAGIC or page_size is None:
            return "the write-ahead log header is damaged (its frames are ignored)"
        frame = page_size + _FRAME_HEADER
        partial = (size - _WAL_HEADER) % frame
        if partial:
            return f"{prefix} (an incomplete {frame}-byte frame, {partial} bytes written)"
        # frames of a transaction without its commit frame at the end of the current log
        # (frames with other salts were left over from before the log was restarted)
        uncommitted = 0
        for index in range((size - _WAL_HEADER) // frame - 1, -1, -1):
            f.seek(_WAL_HEADER + index * frame)
            _page, commit, s1, s2 = struct.unpack(">4I", f.read(16))
            if (s1, s2) != (salt1, salt2):
                if uncommitted:
                    break
                continue
            if commit:
                break
            uncommitted += 1
    if uncommitted:
        plural = "s" if uncommitted > 1 else ""
        return f"{prefix} (a transaction of {uncommitted} frame{plural} without its commit frame)"
    return None


def inspect_database(path: str | os.PathLike[str], name: str | None = None) -> str | None:
    """What is suspicious about the database file ``path`` (``None``: nothing, or
    no file yet): not whole pages, or shorter than its header says. Raises
    :class:`JournalError` when it is not a SQLite database at all."""
    name = os.fspath(path) if name is None else name
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        return None
    if size == 0:
        return None
    with open(path, "rb") as f:
        header = f.read(100)
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise JournalError(f"journal {name}: not a journal (not a SQLite database)")
    page_size = _page_size(struct.unpack(">H", header[16:18])[0])
    if page_size is None:
        raise JournalError(f"journal {name}: not a journal (a SQLite header with no page size)")
    partial = size % page_size
    if partial:
        return (
            f"torn write at the end of the database file (an incomplete {page_size}-byte"
            f" page, {partial} bytes written)"
        )
    change, pages = struct.unpack(">II", header[24:32])
    (valid_for,) = struct.unpack(">I", header[92:96])
    if pages and valid_for == change and pages > size // page_size:
        return f"the database file is cut short ({size // page_size} of its {pages} pages)"
    return None


# -- SQLite helpers -----------------------------------------------------------------------


def _is_corruption(exc: sqlite3.Error) -> bool:
    """SQLITE_CORRUPT or SQLITE_NOTADB (not a lock, I/O or misuse error)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (11, 26)
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)


def _check_meta(db: sqlite3.Connection, name: str) -> bool:
    """True when the file is a journal; False when it has no tables (a new file).
    Raises :class:`JournalError` for another kind of database or a newer format."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        return False
    not_a_journal = JournalError(
        f"journal {name}: not a journal (a SQLite database without the journal's"
        " meta and blocks tables)"
    )
    if "meta" not in tables:
        raise not_a_journal
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    if meta.get("format") != FORMAT:
        raise JournalError(
            f"journal {name}: not a journal (format {meta.get('format')!r}, expected {FORMAT!r})"
        )
    version = meta.get("version", "")
    if not version.isdigit():
        raise JournalError(f"journal {name}: unreadable format version {version!r}")
    if int(version) > FORMAT_VERSION:
        raise JournalError(
            f"journal {name}: format version {version} is newer than this engine reads"
            f" (up to {FORMAT_VERSION}); open it with a newer engine"
        )
    if int(version) < FORMAT_VERSION:
        raise JournalError(
            f"journal {name}: format version {version} (one row per record) is no longer"
            f" read; this engine reads version {FORMAT_VERSION} (one row per commit):"
            " start a new journal"
        )
    if "blocks" not in tables:
        raise not_a_journal
    return True


def _writer() -> str:
    try:
        from importlib.metadata import version

        return f"engine {version('engine')}"
    except Exception:  # not installed (a source tree)
        return "engine"


def _create(db: sqlite3.Connection) -> None:
    db.execute("BEGIN IMMEDIATE")
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    for statement in _SCHEMA:
        db.execute(statement)
    db.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?)",
        [("format", FORMAT), ("version", str(FORMAT_VERSION)), ("writer", _writer())],
    )
    db.execute("COMMIT")


def _sync_dir(folder: Path) -> None:
    """Make renames in ``folder`` durable (POSIX; elsewhere a no-op)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _uri(path: Path) -> str:
    return f"{path.resolve().as_uri()}?mode=ro"


# -- the store ----------------------------------------------------------------------------


class SqliteJournal:
    """A :class:`~engine.journal.JournalStore` in one SQLite file (WAL mode).

    ``append`` keeps ``data`` by reference and encodes it at the latest at
    ``commit`` (with the next ``CHUNK`` entries, usually): do not change it after
    appending it. One writer per file (a second one's commits fail); readers
    (``engine journal show``) may read while it writes.
    """

    recovered: Recovered | None

    def __init__(self, config: SqliteJournalConfig) -> None:
        self.config = config
        self.name = config.path  # as configured, for messages
        self.path = Path(config.path)
        self.recovered = None
        self._buffer: list[Record] = []  # appended, not encoded yet
        self._block: Payload | None = None  # the block being encoded ...
        self._block_first = self._block_count = 0  # ... its first record and its count
        self._ready: list[tuple[int, int, int, bytes]] = []  # (first, last, size, payload)
        self._encode_at = 0  # the seq at which to encode the buffer (every CHUNK appends)
        self._seq = 0
        self._commits = 0
        self._db: sqlite3.Connection | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._open()
        self._encode_at = self._seq + CHUNK

    # -- opening and recovery -------------------------------------------------------

    def _connect(self, path: Path) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise JournalError(f"journal {self.name}: cannot open: {exc}") from exc
        return db

    def _prepare(self, db: sqlite3.Connection, check: bool) -> int:
        """Set the connection up, create or check the schema; the last seq."""
        try:
            exists = _check_meta(db, self.name)  # before changing anything in the file
            db.execute("PRAGMA journal_mode = WAL")
            db.execute(f"PRAGMA synchronous = {self.config.synchronous.upper()}")
            if not exists:
                _create(db)
            db.execute(_CONTIGUOUS)
            if not exists:
                return 0
            if check:
                problems = [r[0] for r in db.execute("PRAGMA quick_check(5)")]
                if problems != ["ok"]:
                    raise _Damaged(
                        problems[0].replace("\n", " ").removeprefix("*** in database main *** ")
                    )
            row = db.execute(_LAST_BLOCK).fetchone()
        except sqlite3.Error as exc:
            if _is_corruption(exc):
                raise _Damaged(str(exc)) from exc
            raise JournalError(f"journal {self.name}: cannot open: {exc}") from exc
        if row is None:
            return 0
        block = _raw_block(row)
        if block is None:
            raise _Damaged("the last block is malformed")
        if not block.crc_ok:
            raise _Damaged(f"{_block_name(block)} fails its CRC check")
        return block.last_seq

    def _open(self) -> None:
        self._finish_recovery()
        wal_damage = inspect_wal(self.path) if self.path.exists() else None
        file_damage = inspect_database(self.path, self.name)
        db = self._connect(self.path)
        try:
            last = self._prepare(db, check=file_damage is not None)
        except _Damaged as exc:
            db.close()
            what = file_damage or f"the database file is damaged ({exc})"
            if wal_damage:
                what = f"{wal_damage}; {what}"
            self._salvage(what)
            return
        except BaseException:
            db.close()
            raise
        self._db = db
        self._seq = last
        if wal_damage:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # report the torn tail once
            self.recovered = Recovered(
                last, f"journal {self.name}: {wal_damage}; recovered up to record {last}"
            )

    def _damaged_path(self) -> tuple[Path, str]:
        n = 1
        while Path(f"{self.path}.damaged-{n}").exists():
            n += 1
        return Path(f"{self.path}.damaged-{n}"), f"{self.name}.damaged-{n}"

    def _finish_recovery(self) -> None:
        """Complete a recovery a crash interrupted (``<name>.recovering`` left behind)."""
        tmp = Path(f"{self.path}.recovering")
        if not tmp.exists():
            return
        if self.path.exists():  # interrupted while copying: the next open starts over
            for file in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
                file.unlink(missing_ok=True)
            return
        # interrupted after the damaged file was moved aside: its log goes with it
        wal = Path(f"{self.path}-wal")
        if wal.exists():
            n = 1
            while Path(f"{self.path}.damaged-{n + 1}").exists():
                n += 1
            os.replace(wal, f"{self.path}.damaged-{n}-wal")
        Path(f"{self.path}-shm").unlink(missing_ok=True)
        os.replace(tmp, self.path)
        _sync_dir(self.path.parent)

    def _salvage(self, what: str) -> None:
        """Copy the readable records into a fresh file, keep the damaged one aside as
        ``<name>.damaged-<n>`` and put the fresh one in its place."""
        tmp = Path(f"{self.path}.recovering")
        for file in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            file.unlink(missing_ok=True)
        fresh = self._connect(tmp)
        try:
            self._prepare(fresh, check=False)
            last, stop = self._copy_readable(self.path, fresh)
        finally:
            fresh.close()
        damaged, damaged_name = self._damaged_path()
        os.replace(self.path, damaged)
        wal = Path(f"{self.path}-wal")
        if wal.exists():
            if wal.stat().st_size:
                os.replace(wal, f"{damaged}-wal")
            else:
                wal.unlink()
        Path(f"{self.path}-shm").unlink(missing_ok=True)
        os.replace(tmp, self.path)
        _sync_dir(self.path.parent)
        db = self._connect(self.path)
        try:
            self._seq = self._prepare(db, check=False)
        except BaseException:
            db.close()
            raise
        self._db = db
        copied = f"copied records 1-{last}" if last else "no record could be copied"
        self.recovered = Recovered(
            last,
            f"journal {self.name}: {what}; {copied} into a fresh file ({stop}); the damaged"
            f" file is kept as {damaged_name}; recovered up to record {last}",
        )

    def _copy_readable(self, source_path: Path, db: sqlite3.Connection) -> tuple[int, str]:
        """Copy blocks of ``source_path`` (read-only) into ``db``, in sequence order,
        while they read back whole: the last record copied, and why the copy stopped."""
        last = 0
        stop = "every block was readable"
        rows: list[tuple[int, int, int, int, bytes]] = []
        size = 0

        def flush() -> None:
            if rows:
                db.execute("BEGIN IMMEDIATE")
                db.executemany(_INSERT, rows)
                db.execute("COMMIT")
                rows.clear()

        try:
            source = sqlite3.connect(_uri(source_path), uri=True)
        except sqlite3.Error as exc:
            return 0, f"the damaged file cannot be opened: {exc}"
        try:
            # read a file shorter than its header says (SQLite refuses it otherwise)
            source.execute("PRAGMA writable_schema = ON")
            cursor = source.execute(f"{_BLOCK} ORDER BY first_seq")
            while True:
                try:
                    row = cursor.fetchone()
                except sqlite3.Error as exc:
                    stop = f"record {last + 1} and later are unreadable: {exc}"
                    break
                if row is None:
                    break
                block = _raw_block(row)
                if block is None:
                    stop = f"the block after record {last} is malformed"
                    break
                if block.first_seq != last + 1:
                    stop = (
                        f"record {last + 1} is missing or damaged: the next block starts at"
                        f" record {block.first_seq}"
                    )
                    break
                if not block.crc_ok:
                    stop = f"{_block_name(block)} fails its CRC check"
                    break
                try:
                    block.decode()
                except ValueError as exc:
                    stop = f"{_block_name(block)} is unreadable: {exc}"
                    break
                rows.append(row)
                last = block.last_seq
                size += len(block.payload)
                if size >= 1 << 24:
                    flush()
                    size = 0
        except sqlite3.Error as exc:
            stop = f"the blocks cannot be read: {exc}"
        finally:
            source.close()
        flush()
        return last, stop

    # -- the JournalStore protocol ----------------------------------------------------

    def append(self, ts: int, kind: str, ref: str, data: dict[str, Any]) -> int:
        """Buffer one entry; returns its sequence number. Every ``CHUNK`` entries are
        encoded together (one orjson call, while they are fresh in memory)."""
        self._seq = seq = self._seq + 1
        self._buffer.append((seq, ts, kind, ref, data))
        if seq >= self._encode_at:
            self._encode_chunk()
        return seq

    @property
    def last_seq(self) -> int:
        """The sequence number of the last appended entry (0 when empty)."""
        return self._seq

    def _encode_chunk(self) -> None:
        """Encode the buffer as a line of the block being written (or lines of the
        blocks); if something in it cannot be encoded, stop encoding early (``commit``
        names the record)."""
        buffer = self._buffer
        block = self._block
        try:
            if block is not None and self._block_count + len(buffer) < MAX_BLOCK:
                block.write(encode_chunk(buffer))  # the usual case, in short
                self._block_count += len(buffer)
                buffer.clear()
            else:
                self._write(self._lines())
        except (TypeError, ValueError, RecursionError):
            self._encode_at = _NEVER
            return
        self._encode_at = self._seq + CHUNK

    def _encode_rest(self) -> None:
        """Encode what is left in the buffer, or raise :class:`JournalError` naming the
        record that cannot be stored (then nothing changed)."""
        if not self._buffer:
            return
        try:
            lines = self._lines()
        except (TypeError, ValueError, RecursionError) as exc:
            for record in self._buffer:  # find the record, slowly
                try:
                    encode_record(record)
                except (TypeError, ValueError, RecursionError) as inner:
                    seq, _ts, kind, ref, _data = record
                    raise JournalError(
                        f"journal {self.name}: record {seq} ({kind} {ref}) cannot be stored:"
                        f" {type(inner).__name__}: {inner}"
                    ) from exc
            raise JournalError(f"journal {self.name}: cannot encode: {exc}") from exc
        self._write(lines)

    def _lines(self) -> list[tuple[int, int, bytes]]:
        """The buffer encoded as lines ``(first_seq, count, line)``: what fits in the
        block being written, then at most ``MAX_BLOCK`` records a line. Raises what
        :func:`encode_chunk` raises."""
        buffer = self._buffer
        room = MAX_BLOCK - (self._block_count if self._block is not None else 0)
        if len(buffer) <= room:
            return [(buffer[0][0], len(buffer), encode_chunk(buffer))]
        lines = []
        start = 0
        while start < len(buffer):
            part = buffer[start : start + room]
            lines.append((part[0][0], len(part), encode_chunk(part)))
            start += room
            room = MAX_BLOCK
        return lines

    def _write(self, lines: list[tuple[int, int, bytes]]) -> None:
        """Add the encoded lines (of the whole buffer) to the blocks being written."""
        for first, count, line in lines:
            if self._block is None:
                self._block, self._block_first, self._block_count = Payload(), first, 0
            self._block.write(line)
            self._block_count += count
            if self._block_count >= MAX_BLOCK:
                self._finish_block()
        self._buffer.clear()

    def _finish_block(self) -> None:
        block = self._block
        if block is not None:
            first = self._block_first
            payload = block.finish()
            self._ready.append((first, first + self._block_count - 1, block.size, payload))
            self._block = None

    def commit(self) -> None:
        """Write every appended entry as one block (one INSERT; a commit of more than
        ``MAX_BLOCK`` records writes several blocks in one transaction), synced per
        config. On an error nothing is written and the entries stay buffered."""
        if not self._buffer and self._block is None and not self._ready:
            return
        db = self._connection()
        self._encode_rest()
        self._finish_block()
        blocks = [
            (first, last, block_crc(first, last, size, payload), size, payload)
            for first, last, size, payload in self._ready
        ]
        try:
            if len(blocks) == 1:
                db.execute(_INSERT, blocks[0])
            else:
                db.execute("BEGIN IMMEDIATE")
                db.executemany(_INSERT, blocks)
                db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back
                    db.execute("ROLLBACK")
            why = str(exc)
            if why == _NOT_AT_END:
                why = (
                    f"the file ends at record {self._file_last()}, not {blocks[0][0] - 1}"
                    " (another store writes it?)"
                )
            raise JournalError(
                f"journal {self.name}: commit of records {blocks[0][0]}-{blocks[-1][1]}"
                f" failed: {why}"
            ) from exc
        self._ready.clear()
        self._encode_at = self._seq + CHUNK
        self._commits += 1
        if self._commits % self.config.checkpoint_every == 0:
            self.checkpoint()

    def _file_last(self) -> int | str:
        try:
            row = self._connection().execute(_LAST_BLOCK).fetchone()
        except sqlite3.Error:
            return "?"
        return 0 if row is None else int(row[1])

    def entries(self, after: int = 0) -> Iterator[Entry]:
        """Committed entries with ``seq > after``, in order, decoded block by block
        (about ``BATCH`` records read per query); every block's CRC is checked."""
        name = self.name
        for row in _read_rows(self._connection(), name, after):
            for seq, ts, kind, ref, data in _block_records(row, name, after):
                if type(data) is not dict:
                    raise JournalError(
                        f"journal {name}: record {seq} ({kind} {ref}): bad data: a JSON"
                        f" {json_type(data)}, not an object"
                    )
                yield Entry(seq, ts, kind, ref, data)

    def raw_entries(self, after: int = 0) -> Iterator[RawBlock]:
        """Committed blocks as stored (payload and CRC unchecked), for :func:`verify`:
        from the block holding record ``after + 1``."""
        for row in _read_rows(self._connection(), self.name, after):
            block = _raw_block(row)
            if block is None:
                raise JournalError(
                    f"journal {self.name}: the block at record {row[0]} is malformed"
                )
            yield block

    def count(self) -> int:
        """How many committed records the file holds."""
        try:
            row = (
                self._connection()
                .execute("SELECT coalesce(sum(last_seq - first_seq + 1), 0) FROM blocks")
                .fetchone()
            )
        except sqlite3.Error as exc:
            raise JournalError(f"journal {self.name}: cannot count the records: {exc}") from exc
        return int(row[0])

    def verify(self) -> list[str]:
        """Every consistency problem of the committed records, CRCs included (see
        :func:`engine.journal.verify.verify`); empty when consistent."""
        from engine.journal.verify import verify

        return verify(self.raw_entries())

    @staticmethod
    def scan(
        path: str | os.PathLike[str],
        *,
        after: int = 0,
        kinds: Sequence[str] = (),
        ref: str | None = None,
        limit: int | None = None,
    ) -> Iterator[RawEntry]:
        """Read the journal file ``path`` without opening it for writing: :func:`scan`."""
        return scan(path, after=after, kinds=kinds, ref=ref, limit=limit)

    def checkpoint(self, mode: str = "PASSIVE") -> tuple[int, int, int]:
        """Run a WAL checkpoint (``PASSIVE``, ``FULL``, ``RESTART`` or ``TRUNCATE``):
        SQLite's (busy, log frames, checkpointed frames)."""
        if mode not in ("PASSIVE", "FULL", "RESTART", "TRUNCATE"):
            raise ValueError(f"unknown checkpoint mode {mode!r}")
        try:
            row = self._connection().execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except sqlite3.Error as exc:
            raise JournalError(f"journal {self.name}: checkpoint failed: {exc}") from exc
        return (int(row[0]), int(row[1]), int(row[2]))

    def close(self) -> None:
        """Commit and close (a second call does nothing)."""
        if self._db is None:
            return
        try:
            self.commit()
        finally:
            self._db.close()
            self._db = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise JournalError(f"journal {self.name}: closed")
        return self._db

    def __enter__(self) -> SqliteJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqliteJournal({self.name!r}, last_seq={self._seq})"


# -- reading blocks -----------------------------------------------------------------------


def _raw_block(row: tuple[Any, ...]) -> RawBlock | None:
    """A stored row as a :class:`RawBlock` (``None`` when its columns have the wrong
    types: a damaged row)."""
    first, last, crc, size, payload = row
    if (
        type(first) is int
        and type(last) is int
        and type(crc) is int
        and type(size) is int
        and type(payload) is bytes
    ):
        return RawBlock(first, last, crc, size, payload)
    return None


def _block_name(block: RawBlock) -> str:
    """``the block of records 50-60`` (for recovery messages)."""
    if block.first_seq == block.last_seq:
        return f"the block of record {block.first_seq}"
    return f"the block of records {block.first_seq}-{block.last_seq}"


def _read_rows(db: sqlite3.Connection, name: str, after: int) -> Iterator[tuple[Any, ...]]:
    """The stored blocks (rows) from the one holding record ``after + 1``, in order:
    each query reads the blocks starting within the next ``BATCH`` records (at least
    one), so a block committed while streaming is seen, and memory stays bounded."""
    lo = after  # the next query reads blocks with first_seq > lo ...
    done = after  # for messages
    try:
        row = db.execute(
            "SELECT first_seq FROM blocks WHERE first_seq <= ? ORDER BY first_seq DESC LIMIT 1",
            (after + 1,),
        ).fetchone()
        if row is not None and type(row[0]) is int:
            lo = row[0] - 1
        hi = after + BATCH  # ... and first_seq <= hi
        while True:
            rows = db.execute(
                f"{_BLOCK} WHERE first_seq > ? AND first_seq <= ? ORDER BY first_seq", (lo, hi)
            ).fetchall()
            if not rows:  # the end, or a gap wider than BATCH
                rows = db.execute(
                    f"{_BLOCK} WHERE first_seq > ? ORDER BY first_seq LIMIT 1", (lo,)
                ).fetchall()
                if not rows:
                    return
            yield from rows
            first, last = rows[-1][0], rows[-1][1]
            if type(first) is not int or type(last) is not int:
                raise JournalError(f"journal {name}: the block at record {first} is malformed")
            lo = first
            done = hi = max(first, last)
            hi += BATCH
    except sqlite3.Error as exc:
        hint = " (opening it with the engine recovers what can be)" if _is_corruption(exc) else ""
        raise JournalError(f"journal {name}: cannot read after record {done}: {exc}{hint}") from exc


def _block_records(row: tuple[Any, ...], name: str, after: int) -> list[list[Any]]:
    """The records of a stored block with ``seq > after``, checked (CRC, structure)."""
    first, last, crc, size, payload = row
    if type(payload) is not bytes or type(size) is not int or type(crc) is not int:
        raise JournalError(f"journal {name}: the block at record {first} is malformed")
    if block_crc(first, last, size, payload) != crc:
        label = block_label(first, last)
        raise JournalError(f"journal {name}: {label}: CRC mismatch, the block is damaged")
    try:
        records = decode_block(first, last, size, payload)
    except ValueError as exc:
        label = block_label(first, last)
        raise JournalError(f"journal {name}: {label}: unreadable: {exc}") from None
    return records if after < first else records[after + 1 - first :]


# -- reading without opening for writing --------------------------------------------------


def scan(
    path: str | os.PathLike[str],
    *,
    after: int = 0,
    kinds: Sequence[str] = (),
    ref: str | None = None,
    limit: int | None = None,
) -> Iterator[RawEntry]:
    """Stream the records of the journal ``path`` read-only (never repairs; safe
    while an engine writes it): ``seq > after``, of ``kinds`` (all when empty), with
    ``ref``, at most ``limit``. A damaged block stops the stream with a
    :class:`JournalError` naming it."""
    name = os.fspath(path)
    file = Path(path)
    if not file.is_file():
        raise JournalError(f"journal {name}: no such file")
    inspect_database(file, name)  # not SQLite at all: a clear error
    wanted = frozenset(kinds)
    try:
        db = sqlite3.connect(_uri(file), uri=True)
    except sqlite3.Error as exc:
        raise JournalError(f"journal {name}: cannot open: {exc}") from exc
    try:
        try:
            if not _check_meta(db, name):
                return
        except sqlite3.Error as exc:
            raise JournalError(f"journal {name}: cannot open: {exc}") from exc
        if limit is not None and limit <= 0:
            return
        found = 0
        for row in _read_rows(db, name, after):
            for record in _block_records(row, name, after):
                if (wanted and record[2] not in wanted) or (ref is not None and record[3] != ref):
                    continue
                yield RawEntry(*record)
                found += 1
                if found == limit:
                    return
    finally:
        db.close()
