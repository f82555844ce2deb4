"""The scene's folder as the editor sees it: images to pick, thumbnails, and uploads. Nothing outside it.

Every path from a request is resolved (symbolic links followed) and must land inside the folder; uploads are
size-capped, decoded with the same safe opener as references (pixel cap, format allow-list), named after
their real format and written atomically into `refs/`. Torch-free.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

from PIL import Image

from ctxgen.core.errors import UserError
from ctxgen.core.fsio import png_bytes, write_bytes
from ctxgen.scene.images import ImageError, decode_image_bytes, open_image

IMAGE_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP", ".gif": "GIF",
                  ".tif": "TIFF", ".tiff": "TIFF"}
SUFFIX_OF = {"PNG": ".png", "JPEG": ".jpg", "MPO": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "GIF": ".gif",
             "TIFF": ".tif"}
MAX_UPLOAD = 25 * 1024 * 1024
UPLOAD_DIR = "refs"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.+-]{0,119}$")
MAX_LISTED = 400
THUMB = 160


class PathRefused(UserError):
    """A path from a request that leaves the scene's folder, or names something that is not an image there."""


class UploadRefused(UserError):
    """An upload that is too big, not an image, or badly named."""


class Folder:
    """The scene's folder: confined lookups, image listing, thumbnails and uploads."""

    def __init__(self, root: Path, skip: tuple[Path, ...] = (), max_upload: int = MAX_UPLOAD):
        self.root = Path(root).resolve()
        self.skip = tuple(p.resolve() for p in skip)
        self.max_upload = max_upload
        self._thumbs: dict[tuple, bytes] = {}

    def inside(self, rel: str) -> Path:
        """The resolved path of `rel` if it is inside the folder; PathRefused otherwise."""
        if not rel or "\x00" in rel or os.path.isabs(rel) or "\\" in rel:
            raise PathRefused(f"{rel!r}: give a path relative to the scene's folder")
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root):
            raise PathRefused(f"{rel!r} is outside the scene's folder {self.root}")
        return path

    def image(self, rel: str) -> Path:
        """An existing image file inside the folder."""
        path = self.inside(rel)
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            raise PathRefused(f"{rel!r} is not an image file in the scene's folder")
        return path

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def list_images(self) -> list[dict[str, Any]]:
        """Image files under the folder (hidden folders and the output folder skipped), at most MAX_LISTED."""
        found: list[dict[str, Any]] = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            here = Path(dirpath)
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                                 and (here / d).resolve() not in self.skip
                                 and (here / d).resolve().is_relative_to(self.root))
            for name in sorted(filenames):
                path = here / name
                if name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                if not path.resolve().is_relative_to(self.root):
                    continue
                found.append({"path": self.rel(path), "bytes": path.stat().st_size})
                if len(found) >= MAX_LISTED:
                    return found
        return found

    def thumbnail(self, rel: str) -> bytes:
        """A small PNG of an image in the folder, decoded with the safe opener (cached by file identity)."""
        path = self.image(rel)
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size)
        if key not in self._thumbs:
            try:
                im = open_image(path)
            except ImageError as exc:
                raise PathRefused(f"{rel}: {exc.reason}") from None
            im = im.convert("RGBA")
            im.thumbnail((THUMB, THUMB))
            if len(self._thumbs) > 256:
                self._thumbs.clear()
            self._thumbs[key] = png_bytes(im)
        return self._thumbs[key]

    def save_upload(self, name: str, data: bytes) -> dict[str, Any]:
        """Check and store an uploaded image in `refs/`; an identical file already there is reused."""
        if len(data) > self.max_upload:
            raise UploadRefused(f"{name}: {len(data):,} bytes is over the upload limit of {self.max_upload:,}")
        stem, suffix = os.path.splitext(name)
        if not _NAME.match(name or "") or name in (".", "..") or suffix.lower() not in IMAGE_SUFFIXES:
            raise UploadRefused(f"{name!r}: name the file with letters, digits, ' _.+-' and an image extension "
                                f"({', '.join(sorted(IMAGE_SUFFIXES))})")
        try:
            im = decode_image_bytes(data, name)
        except ImageError as exc:
            raise UploadRefused(f"{name}: {exc.reason}") from None
        fmt = _format(data)
        folder = self.inside(UPLOAD_DIR) if (self.root / UPLOAD_DIR).exists() else self.root / UPLOAD_DIR
        if folder.exists() and not folder.is_dir():
            raise UploadRefused(f"{self.rel(folder)} is not a folder; uploads go there")
        target = self._free_name(folder, stem, SUFFIX_OF.get(fmt, suffix.lower()), data)
        if not target.exists():
            write_bytes(target, data)
        alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
        return {"path": self.rel(target), "size": list(im.size), "alpha": alpha, "format": fmt}

    def _free_name(self, folder: Path, stem: str, suffix: str, data: bytes) -> Path:
        """`stem.suffix`, or `stem-2.suffix`... : the first that is free or already holds these bytes."""
        for n in range(1, 1000):
            path = folder / (f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}")
            if not path.resolve().is_relative_to(self.root):
                raise PathRefused(f"{path.name}: would be written outside the scene's folder")
            if not path.exists() or (path.is_file() and path.read_bytes() == data):
                return path
        raise UploadRefused(f"{stem}{suffix}: too many files of that name in {self.rel(folder)}")


def _format(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as im:
        return im.format or "PNG"


def file_stamp(path: Path | None) -> tuple | None:
    """What identifies a file's current content cheaply: (path, mtime, size, inode); (path, None) when unreadable."""
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return (str(path), None)
    return (str(path), st.st_mtime_ns, st.st_size, st.st_ino)
