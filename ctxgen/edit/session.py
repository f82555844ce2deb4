"""The scene being edited: its current (maybe unsaved) YAML text, checked exactly as `ctxgen validate` checks a
file, and saved back in place with a `.bak` of the version it replaces.

Every change bumps `version`; a request made against an older version is a `Conflict`, so two tabs (or a
slow request) never overwrite each other's edits silently. Torch-free.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctxgen.core.errors import SceneError, UserError
from ctxgen.core.fsio import write_bytes
from ctxgen.edit.yamledit import EditError, Op, apply_ops, new_scene_text, plain_data
from ctxgen.scene.images import check_references
from ctxgen.scene.model import MAX_SCENE_BYTES, Scene, file_problem, parse_scene
from ctxgen.edit.files import file_stamp

_ISSUE = re.compile(r"^(\d+):(\d+) (.+?): (.*)$", re.S)


class Conflict(UserError):
    """The request was made against an older version of the scene (or the file changed on disk)."""


@dataclass(frozen=True)
class Issue:
    """One `ctxgen validate` line, with its parts for placing the message beside its field."""

    text: str  # the whole line, exactly as `ctxgen validate` prints it
    line: int
    col: int
    path: str  # field path: `instances[0].box`, `prompt`, `yaml`, `file`, `scene`
    message: str


@dataclass(frozen=True)
class Check:
    """The outcome of checking one version of the text."""

    version: int
    text: str
    data: Any  # the document as plain data; None when the YAML does not parse
    scene: Scene | None  # set only when there is no error
    issues: tuple[Issue, ...]
    warnings: tuple[Issue, ...]


def parse_issue(line: str, shown: str) -> Issue:
    """Split `file:LINE:COL path: message` (the file name as shown is known, so colons in it are fine)."""
    rest = line[len(shown) + 1:] if line.startswith(shown + ":") else line
    m = _ISSUE.match(rest)
    if m is None:
        return Issue(line, 1, 1, "scene", rest)
    return Issue(line, int(m.group(1)), int(m.group(2)), m.group(3), m.group(4))


def read_scene_text(path: Path) -> str | None:
    """The scene file's text, None when it does not exist yet; a file that is not a scene text is a UserError."""
    if not path.exists() and not path.is_symlink():
        return None
    problem = file_problem(path, "scene file", hint="")
    if problem is None and path.stat().st_size > MAX_SCENE_BYTES:
        problem = f"{path}: larger than {MAX_SCENE_BYTES:,} bytes; this is not a scene file"
    if problem is not None:
        raise UserError(problem)
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text; the editor opens YAML scene files only") from None


class SceneSession:
    """One scene file, its unsaved text and the last check; all methods are thread-safe."""

    def __init__(self, path: Path, shown: str | None = None):
        self.path = Path(path).resolve()
        self.folder = self.path.parent
        self.shown = shown or str(path)
        self.lock = threading.RLock()
        self.disk_text = read_scene_text(self.path)
        self.text = self.disk_text if self.disk_text is not None else new_scene_text()
        self.version = 0
        self.random_seed = secrets.randbelow(2**32)  # the seed previews use for a scene without `seed:`
        self._check: Check | None = None
        self._images_ok: tuple | None = None

    @property
    def dirty(self) -> bool:
        return self.text != self.disk_text

    def state(self) -> Check:
        """The check of the current text (computed once per version)."""
        with self.lock:
            if self._check is None or self._check.version != self.version:
                self._check = self._validate(self.text, self.version)
            return self._check

    def edit(self, ops: list[Op], base: int) -> Check:
        """Apply field edits to the text at their marks; the text is unchanged if any op cannot be applied."""
        with self.lock:
            self._expect(base)
            new = apply_ops(self.text, ops)
            return self._replace(new)

    def set_text(self, text: str, base: int) -> Check:
        with self.lock:
            self._expect(base)
            if len(text.encode("utf-8", "surrogatepass")) > MAX_SCENE_BYTES:
                raise EditError(f"the text is larger than {MAX_SCENE_BYTES:,} bytes; this is not a scene")
            return self._replace(text)

    def reload(self) -> Check:
        """Drop unsaved changes: read the file again."""
        with self.lock:
            self.disk_text = read_scene_text(self.path)
            return self._replace(self.disk_text if self.disk_text is not None else new_scene_text())

    def save(self, base: int, overwrite: bool = False) -> tuple[Path, Path | None]:
        """Write the text in place (atomically), the previous file kept as `<name>.bak`; refuses to overwrite a
        file changed on disk since it was read unless `overwrite`."""
        with self.lock:
            self._expect(base)
            on_disk = read_scene_text(self.path)
            if on_disk != self.disk_text and not overwrite:
                raise Conflict(f"{self.shown} changed on disk since the editor read it; reload it, or save anyway")
            backup = None
            if on_disk is not None:
                backup = write_bytes(self.path.with_name(self.path.name + ".bak"), on_disk.encode("utf-8"))
            write_bytes(self.path, self.text.encode("utf-8"))
            self.disk_text = self.text
            return self.path, backup

    def scene_for_preview(self, scene: Scene) -> Scene:
        """The scene with this session's stable seed when the file gives none (R11 draws from seeds[0])."""
        return dataclasses.replace(scene, seeds=(self.random_seed,)) if scene.seed_random else scene

    # -- internals ---------------------------------------------------------------------------------------
    def _expect(self, base: int) -> None:
        if base != self.version:
            raise Conflict(f"the scene changed (version {self.version}, the request was for {base}); reload the page")

    def _replace(self, text: str) -> Check:
        if text != self.text:
            self.text = text
            self.version += 1
        return self.state()

    def _validate(self, text: str, version: int) -> Check:
        """`ctxgen validate` on unsaved text: the schema and the images, the same messages."""
        try:
            data = plain_data(text)
        except (EditError, UserError):
            data = None
        scene, issues, warnings = None, [], []
        try:
            scene = parse_scene(text.encode("utf-8", "surrogatepass"), self.shown)
            warnings = list(scene.warnings)
            self._check_images(scene)
        except SceneError as exc:
            scene, issues = None, exc.issues
        return Check(version, text, data, scene, tuple(parse_issue(i, self.shown) for i in issues),
                     tuple(parse_issue(w, self.shown) for w in warnings))

    def _check_images(self, scene: Scene) -> None:
        """check_references, skipped while the referenced files and mask modes are those last found good."""
        key = _files_key(scene)
        if key != self._images_ok:
            self._images_ok = None
            check_references(scene)
            self._images_ok = key


def _files_key(scene: Scene) -> tuple:
    """What check_references depends on: each file's identity and each instance's mask mode."""
    parts = [(file_stamp(i.image), i.mask_mode, file_stamp(i.mask)) for i in scene.instances]
    return (tuple(parts), file_stamp(scene.layout))

