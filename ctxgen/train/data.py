"""Which record is the n-th example of a run: the dataset's epoch order, or subsets mixed by weight (T2: 15:1).

The global sample number n = step·batch + index decides the record alone, so the data cursor is the step, any
number of processes reads the same examples for the same step, and a resume needs no saved stream. Without a
mix, sample n is position n mod N of epoch n div N of `DatasetReader.epoch_order` (exactly what
`DatasetReader.stream` yields in one process). With a mix, sample n's subset is a weighted draw keyed by
(seed, n) in blocks of 4096, and the k-th sample of a subset is position k of that subset's own epochs (the
dataset's epoch order with the other subsets filtered out, so row-group locality is kept). Torch-free.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ctxgen.core.errors import UserError
from ctxgen.dataset.record import Record
from ctxgen.dataset.shards import Cursor, DatasetReader
from ctxgen.train.randomness import MIX, keyed_rng

BLOCK = 4096  # sample numbers whose subsets are drawn at once


def read_column(reader: DatasetReader, column: str) -> list:
    """One plain column over every shard, in global record order (reads only that column)."""
    import pyarrow.parquet as pq

    out: list = []
    for path in reader.files:
        out += pq.read_table(path, columns=[column]).column(column).to_pylist()
    return out


class ExampleSource:
    """Global sample number -> record (index), deterministic from (seed, n) and the dataset alone."""

    def __init__(self, root: Path, seed: int, mix: dict[str, float] | None = None):
        self.reader = DatasetReader(root)
        self.seed = seed
        self.n_records = len(self.reader)
        if self.n_records == 0:
            raise UserError(f"{root}: the dataset holds no records")
        self.mix = None
        if mix:
            subsets = np.array(read_column(self.reader, "subset"))
            missing = [s for s, w in mix.items() if w > 0 and not (subsets == s).any()]
            if missing:
                have = ", ".join(sorted(set(subsets.tolist())))
                raise UserError(f"data.mix: no record of subset {missing[0]!r} in {root} (it has: {have}); "
                                "fix the weights or the dataset")
            names = [s for s, w in mix.items() if w > 0]
            weights = np.array([mix[s] for s in names], dtype=np.float64)
            self.mix = (names, weights / weights.sum(), [np.flatnonzero(subsets == s) for s in names])
            self._counts: list[np.ndarray] = [np.zeros(len(names), np.int64)]  # per subset, before block b
            self._orders: dict[tuple[int, int], np.ndarray] = {}

    def subset_counts(self) -> dict[str, int]:
        """Records per subset (only for a mixed source: the records the mix can reach)."""
        return {} if self.mix is None else {s: len(m) for s, m in zip(self.mix[0], self.mix[2])}

    def _block(self, b: int) -> np.ndarray:
        """Subset ids (int) drawn for sample numbers b·BLOCK .. (b+1)·BLOCK - 1."""
        names, probs, _ = self.mix
        return keyed_rng(self.seed, MIX, b).choice(len(names), size=BLOCK, p=probs)

    def _position(self, n: int) -> tuple[int, int]:
        """(subset id, its local sample number) of global sample n."""
        b, r = divmod(n, BLOCK)
        while len(self._counts) <= b:
            k = len(self._counts) - 1
            self._counts.append(self._counts[k] + np.bincount(self._block(k), minlength=len(self.mix[0])))
        picks = self._block(b)
        s = int(picks[r])
        return s, int(self._counts[b][s] + np.count_nonzero(picks[:r] == s))

    def _subset_order(self, s: int, epoch: int) -> np.ndarray:
        key = (s, epoch)
        if key not in self._orders:
            members = np.zeros(self.n_records, dtype=bool)
            members[self.mix[2][s]] = True
            order = self.reader.epoch_order(self.seed, epoch)
            self._orders = {k: v for k, v in self._orders.items() if k[0] != s}  # one epoch kept per subset
            self._orders[key] = order[members[order]]
        return self._orders[key]

    def index_of(self, n: int) -> int:
        """The global record index of sample n."""
        if n < 0:
            raise ValueError(f"sample number must be >= 0, got {n}")
        if self.mix is None:
            epoch, pos = divmod(n, self.n_records)
            return int(self.reader.epoch_order(self.seed, epoch)[pos])
        s, local = self._position(n)
        epoch, pos = divmod(local, len(self.mix[2][s]))
        return int(self._subset_order(s, epoch)[pos])

    def record(self, n: int) -> Record:
        """The record of sample n."""
        return self.reader.record(self.index_of(n))

    def cursor(self, n: int) -> Cursor:
        """Where the unmixed stream stands before sample n (`DatasetReader.stream`'s cursor, for the state file)."""
        epoch, pos = divmod(n, self.n_records)
        return Cursor(epoch, pos)
