"""Parquet shards: the atomic writer and `DatasetReader` (random access, deterministic resumable streams). Torch-free.

Stream order (what `ctxgen train` consumes): per epoch, the row groups are permuted, then the records of every
window of `WINDOW` consecutive groups are permuted; both permutations come from PCG64 streams keyed by
(seed, epoch) only, so the order never depends on the process, the numpy version or the start time. Rank r of
world w takes positions r, r + w, ...; a `Cursor` (epoch, position) is the next position to read.
"""

from __future__ import annotations

import json
import os
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ctxgen.core.errors import OutputError, UsageError, UserError
from ctxgen.core.fsio import write_with
from ctxgen.dataset.arrow import FORMAT, IMAGE_FIELDS, RowError, arrow_schema, record_to_row, row_to_record
from ctxgen.dataset.record import SCHEMA_VERSION, Record

SHARD_RE = re.compile(r"^(?P<split>[A-Za-z0-9_.]+)-(?P<k>\d{5})-of-(?P<n>\d{5})\.parquet$")
GROUP_ROWS = 32  # at most this many records per row group ...
GROUP_BYTES = 16 << 20  # ... and about this many image bytes: a streaming reader holds a few groups at once
WINDOW = 4  # row groups whose records are shuffled together
_CACHE_GROUPS = WINDOW + 2


def shard_name(split: str, k: int, n: int) -> str:
    """Hub-style shard file name: `train-00000-of-00012.parquet`."""
    return f"{split}-{k:05d}-of-{n:05d}.parquet"


def _image_bytes(row: dict) -> int:
    cells = [row[k] for k in ("target", "rejected", "layout")]
    cells += [inst[f] for inst in row["instances"] for f in IMAGE_FIELDS]
    return sum(len(c["bytes"]) for c in cells if c is not None)


def _codecs() -> dict[str, str]:
    """Per-column codecs: image bytes are compressed already (stored as is), everything else zstd."""
    leaves = [f"{c}.{part}" for c in ("target", "rejected", "layout") for part in ("bytes", "path")]
    leaves += [f"instances.list.element.{f}.{part}" for f in IMAGE_FIELDS for part in ("bytes", "path")]
    leaves += [f"instances.list.element.{f}" for f in ("label", "phrase", "kind", "fit", "z")]
    leaves += [f"instances.list.element.{f}.list.element" for f in ("box", "valid_box", "loc_point")]
    leaves += ["id", "subset", "prompt", "seed", "fit", "ica", "metadata", "schema_version"]
    return {leaf: ("NONE" if leaf.endswith(".bytes") else "ZSTD") for leaf in leaves}


def write_shard(path: Path, records: Iterable[Record], extra_meta: dict | None = None) -> int:
    """Write records to one Parquet file atomically (temp + rename), row groups sized for streaming; returns rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema()
    if extra_meta:
        schema = schema.with_metadata({**schema.metadata, b"ctxgen_build": json.dumps(extra_meta, sort_keys=True)})
    counted = [0]

    def _write(fh) -> None:
        writer = pq.ParquetWriter(fh, schema, compression=_codecs(), use_dictionary=["id", "subset", "fit", "ica"])
        try:
            group: list[dict] = []
            size = 0
            for rec in records:
                row = record_to_row(rec)
                group.append(row)
                size += _image_bytes(row)
                if len(group) >= GROUP_ROWS or size >= GROUP_BYTES:
                    writer.write_table(pa.Table.from_pylist(group, schema=schema), row_group_size=len(group))
                    counted[0], group, size = counted[0] + len(group), [], 0
            if group:
                writer.write_table(pa.Table.from_pylist(group, schema=schema), row_group_size=len(group))
                counted[0] += len(group)
        finally:
            writer.close()

    write_with(Path(path), _write)  # temp file + fsync + rename (ctxgen.core.fsio)
    rows = counted[0]
    return rows


@dataclass(frozen=True)
class Cursor:
    """Where a stream stands: the next `position` of epoch `epoch`'s permutation (saved with a checkpoint)."""

    epoch: int = 0
    position: int = 0

    def to_json(self) -> str:
        return json.dumps({"epoch": self.epoch, "position": self.position})

    @classmethod
    def from_json(cls, text: str) -> Cursor:
        try:
            doc = json.loads(text)
            epoch, position = doc["epoch"], doc["position"]
        except (ValueError, TypeError, KeyError):
            raise UsageError(f"cursor {text[:60]!r}: expected {{\"epoch\": E, \"position\": P}}") from None
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (epoch, position)):
            raise UsageError(f"cursor {text[:60]!r}: epoch and position must be integers >= 0")
        return cls(epoch, position)


@dataclass(frozen=True)
class Location:
    """Where a record is stored, for messages: `train-00000-of-00002.parquet:17`."""

    shard: Path
    row: int

    def __str__(self) -> str:
        return f"{self.shard.name}:{self.row}"


def list_shards(root: Path) -> list[Path]:
    """The shard files of a dataset folder, in name order; a folder without any is one error line."""
    root = Path(root)
    if root.is_file() and root.suffix == ".parquet":
        return [root]
    if not root.is_dir():
        raise UserError(f"{root}: no such dataset folder; give the folder `ctxgen dataset pack` wrote")
    files = sorted(p for p in root.glob("*.parquet") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise UserError(f"{root}: holds no .parquet shards; give the folder `ctxgen dataset pack` wrote")
    return files


def _open(path: Path):
    """A ParquetFile whose schema is a ctxgen dataset of this version; anything else is one error line."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError on truncated or foreign files
        raise UserError(f"{path}: not a readable Parquet file ({type(exc).__name__}); the shard is truncated or "
                        "corrupt: copy or pack it again") from None
    meta = pf.schema_arrow.metadata or {}
    tag = meta.get(b"ctxgen")
    if tag is not None:
        doc = json.loads(tag)
        if doc.get("format") != FORMAT or doc.get("schema_version") != SCHEMA_VERSION:
            raise UserError(f"{path}: schema version {doc.get('schema_version')!r}, but this ctxgen reads version "
                            f"{SCHEMA_VERSION}; use the ctxgen that wrote it, or pack the data again")
    missing = {"id", "target", "instances", "schema_version"} - set(pf.schema_arrow.names)
    if missing:
        raise UserError(f"{path}: not a ctxgen dataset shard (no column {sorted(missing)[0]!r}); "
                        "see `ctxgen dataset schema`")
    return pf


class DatasetReader:
    """Random access and streams over the records of a dataset folder (every `*.parquet` in it, name order)."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self.files = list_shards(self.root)
        self._handles: dict[int, object] = {}
        self._pid = os.getpid()
        groups = []  # (file index, row group, first global index, rows)
        start = 0
        for k, path in enumerate(self.files):
            meta = self._file(k).metadata
            for g in range(meta.num_row_groups):
                n = meta.row_group(g).num_rows
                groups.append((k, g, start, n))
                start += n
        self._groups = groups
        self._starts = np.array([g[2] for g in groups], dtype=np.int64)
        self._n = start
        self._cache: OrderedDict[int, list] = OrderedDict()
        self._order: tuple[tuple[int, int], np.ndarray] | None = None

    def __len__(self) -> int:
        return self._n

    def close(self) -> None:
        """Drop the open shard files and cached row groups (they reopen on the next read)."""
        self._handles.clear()
        self._cache.clear()

    def _file(self, k: int):
        if os.getpid() != self._pid:  # a forked worker opens its own file handles
            self._handles, self._pid = {}, os.getpid()
        if k not in self._handles:
            self._handles[k] = _open(self.files[k])
        return self._handles[k]

    def _group_of(self, i: int) -> int:
        if not 0 <= i < self._n:
            raise IndexError(f"record {i} out of range (the dataset holds {self._n})")
        return int(np.searchsorted(self._starts, i, side="right") - 1)

    def location(self, i: int) -> Location:
        """The shard file and row of global record i."""
        k, g, start, _ = self._groups[self._group_of(i)]
        before = sum(n for kk, gg, _, n in self._groups if kk == k and gg < g)
        return Location(self.files[k], before + i - start)

    def _rows(self, gi: int) -> list:
        if gi in self._cache:
            self._cache.move_to_end(gi)
            return self._cache[gi]
        k, g, _, _ = self._groups[gi]
        try:
            rows = self._file(k).read_row_group(g).to_pylist()
        except Exception as exc:
            raise UserError(f"{self.files[k]}: row group {g} cannot be read ({type(exc).__name__}); the shard is "
                            "truncated or corrupt: copy or pack it again") from None
        self._cache[gi] = rows
        while len(self._cache) > _CACHE_GROUPS:
            self._cache.popitem(last=False)
        return rows

    def record(self, i: int) -> Record:
        """Record i (global index over the shards in name order); a bad row is one error line naming it."""
        gi = self._group_of(i)
        row = self._rows(gi)[i - self._groups[gi][2]]
        try:
            return row_to_record(row)
        except RowError as exc:
            located = RowError(f"{self.location(i)} {row.get('id')!r} {exc}")
            located.detail, located.record_id = str(exc), row.get("id")
            raise located from None

    def ids(self) -> list[str]:
        """Every record id, in index order (reads only the id column)."""
        out: list[str] = []
        for k in range(len(self.files)):
            out += self._file(k).read(columns=["id"]).column("id").to_pylist()
        return out

    def index_of(self, record_id: str) -> int:
        """The global index of a record id; an unknown id is one error line."""
        try:
            return self.ids().index(record_id)
        except ValueError:
            raise UserError(f"{self.root}: no record with id {record_id!r}") from None

    def epoch_order(self, seed: int, epoch: int) -> np.ndarray:
        """int64 (N,): the permutation of epoch `epoch` (groups permuted, records permuted within windows)."""
        if self._order is not None and self._order[0] == (seed, epoch):
            return self._order[1]
        group_perm = np.argsort(_keys(seed, epoch, 0, len(self._groups)), kind="stable")
        parts = []
        for w in range(0, len(group_perm), WINDOW):
            idx = np.concatenate([np.arange(self._groups[g][2], self._groups[g][2] + self._groups[g][3])
                                  for g in group_perm[w:w + WINDOW]])
            parts.append(idx[np.argsort(_keys(seed, epoch, 1 + w // WINDOW, len(idx)), kind="stable")])
        order = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        self._order = ((seed, epoch), order)
        return order

    def stream(self, seed: int, cursor: Cursor | None = None, rank: int = 0, world: int = 1
               ) -> Iterator[tuple[Cursor, Record]]:
        """Records forever, epoch after epoch; each comes with the cursor that resumes right after it."""
        if world < 1 or not 0 <= rank < world:
            raise UsageError(f"rank {rank} of world {world}: need world >= 1 and 0 <= rank < world")
        if seed < 0:
            raise UsageError(f"seed {seed}: must be >= 0")
        if self._n == 0:
            raise UserError(f"{self.root}: the dataset holds no records")
        if rank >= self._n:
            raise UserError(f"rank {rank} of world {world} would get no record: the dataset holds {self._n}")
        cur = cursor or Cursor()
        if cur.position > self._n:
            raise UserError(f"cursor position {cur.position} is past the dataset's {self._n} records; "
                            "was the cursor saved for another dataset?")
        epoch, pos = cur.epoch, cur.position
        while True:
            order = self.epoch_order(seed, epoch)
            first = pos + (rank - pos) % world
            for p in range(first, self._n, world):
                nxt = Cursor(epoch, p + 1) if p + 1 < self._n else Cursor(epoch + 1, 0)
                yield nxt, self.record(int(order[p]))
            epoch, pos = epoch + 1, 0

    def scan(self) -> Iterator[tuple[Location, Record | RowError]]:
        """Every record in storage order with its location; a bad row comes as its RowError (validate, stats)."""
        for i in range(self._n):
            try:
                yield self.location(i), self.record(i)
            except RowError as exc:
                yield self.location(i), exc


def _keys(seed: int, epoch: int, stream: int, n: int) -> np.ndarray:
    """uint64 (n,): a PCG64 stream keyed by (seed, epoch, stream); bit streams are stable across numpy versions."""
    bits = np.random.PCG64(np.random.SeedSequence([seed, epoch, stream]))
    return bits.random_raw(n) if n else np.zeros(0, np.uint64)


def check_writable(folder: Path) -> None:
    """The output folder exists or can be made; otherwise one OutputError line."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{folder}: cannot write here ({exc.strerror}); choose another --out") from None
