"""`ctxgen layout --dump`: the token sequence and both masks as one np.load-compatible .npz (R13-R19). Torch-free.

Members: `ids` float32 (S - T, 3), `seg_names`, `seg_bounds` int64 (n_spans, 2), `text_len`, and the masks as
`np.packbits(dense, axis=-1)` uint8 (S, ceil(S / 8)) in `mask_cla` / `mask_ica`. The member names are a file
format (kept from the first release), so the spans are stored as `seg_*`.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import IO

import numpy as np

from ctxgen.core.errors import OutputError
from ctxgen.core.fsio import write_with
from ctxgen.sequence.masks import ClassMask, MaskSet
from ctxgen.sequence.tokens import TokenSequence


def _write_packed(member: IO[bytes], table: ClassMask, chunk_rows: int = 2048) -> None:
    """Stream np.packbits(dense, axis=-1) as one .npy member, gathering packed class rows chunk by chunk."""
    packed_keys = np.packbits(table.keys, axis=-1)  # (C, ceil(S / 8))
    s = table.row_class.shape[0]
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
              "shape": (s, packed_keys.shape[1])}
    np.lib.format.write_array_header_2_0(member, header)
    for start in range(0, s, chunk_rows):
        member.write(packed_keys[table.row_class[start : start + chunk_rows]])  # (rows, ceil(S / 8)), C-contiguous


def _save_npz(file: IO[bytes], arrays: dict[str, np.ndarray], packed: dict[str, ClassMask]) -> None:
    """An np.load-compatible .npz at deflate level 1. The packed masks repeat a few rows: at 1024^2 / six refs the
    file is 0.9 MB instead of 127 MB (np.savez), and streaming them avoids allocating 127 MB (R19 dump)."""
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, arr in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(arr), allow_pickle=False)
        for name, table in packed.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                _write_packed(member, table)


def write_dump(path: Path, tokens: TokenSequence, masks: MaskSet) -> Path:
    """Write tokens.npz atomically; `path` is the file, or a folder to hold tokens.npz."""
    path = Path(path)
    if path.is_dir():
        path = path / "tokens.npz"
    if not path.parent.is_dir():
        raise OutputError(f"{path}: cannot write the token dump (no folder {path.parent}); "
                          "choose a writable output folder")
    arrays = {
        "ids": tokens.ids.astype(np.float32, copy=False),  # (S - T, 3)
        "seg_names": np.array(tokens.span_names, dtype=str),
        "seg_bounds": tokens.span_bounds.astype(np.int64, copy=False),  # (n_spans, 2)
        "text_len": np.int64(tokens.text_len),
    }
    packed = {"mask_cla": masks.table("cla"), "mask_ica": masks.table("ica")}  # each (S, ceil(S / 8)) packbits
    return write_with(path, lambda fh: _save_npz(fh, arrays, packed))
