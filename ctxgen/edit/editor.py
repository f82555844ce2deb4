"""The editor's state for one server: the scene session, previews, the folder, jobs, the one render worker and
SAM. Routers only translate HTTP to these calls."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from ctxgen.batch.types import BatchOptions
from ctxgen.core.errors import SceneError, UserError
from ctxgen.core.options import RenderOptions
from ctxgen.edit.files import MAX_UPLOAD, Folder
from ctxgen.edit.jobs import Job, JobQueue
from ctxgen.edit.layers import z_ops
from ctxgen.edit.previews import MasksNeeded, Previews
from ctxgen.edit.renders import Renderer
from ctxgen.edit.schemas import PreviewOut, SceneOut
from ctxgen.edit.security import LOOPBACK_HOSTS, new_token
from ctxgen.edit.segment import Masks
from ctxgen.edit.session import Check, SceneSession
from ctxgen.outputs.files import scene_out_dirs


class NotReady(UserError):
    """The scene has problems (or a job of that kind is running), so the action cannot start."""


@dataclass(frozen=True)
class EditConfig:
    """How `ctxgen edit` was started."""

    scene: Path
    shown: str = ""  # the scene path as the user gave it (messages print it like `ctxgen validate`)
    model: str | None = None  # preset; None = the default (contextgen)
    out: Path = Path("outputs")
    device: str = "auto"
    sam_model: str = "large"
    render: RenderOptions = field(default_factory=RenderOptions)
    token: str = field(default_factory=new_token)
    hosts: tuple[str, ...] | None = LOOPBACK_HOSTS  # None: any Host header (an explicit --host)
    max_upload: int = MAX_UPLOAD


class Editor:
    """Everything one editor server holds."""

    def __init__(self, config: EditConfig):
        config = dataclasses.replace(config, out=Path(config.out), scene=Path(config.scene))
        self.config = config
        self.session = SceneSession(config.scene, config.shown or str(config.scene))
        scene_path = self.session.path
        self.opts = BatchOptions(out=config.out, model=config.model, render=config.render, device=config.device,
                                 sam_model=config.sam_model, overlays=True)
        self.out_dir = scene_out_dirs([scene_path], config.out)[scene_path]
        self.masks = Masks(config.sam_model, config.device, self.out_dir.parent / ".cache" / "masks")
        self.previews = Previews(self.masks.cached, config.render.text_len)
        self.folder = Folder(self.session.folder, skip=(Path(config.out),), max_upload=config.max_upload)
        self.jobs = JobQueue()
        self.renderer = Renderer(self.opts, scene_path)
        self.stopped: list[Job] = []

    def scene_out(self, check: Check | None = None) -> SceneOut:
        s = self.session
        return SceneOut.of(check or s.state(), s.dirty, s.disk_text is not None, s.shown, str(s.folder))

    def preview(self) -> PreviewOut:
        """The layout preview of the current text, or its problems, or the SAM masks it waits for."""
        check = self.session.state()
        if check.scene is None:
            return PreviewOut(version=check.version, ok=False, problems=[i.text for i in check.issues])
        scene = self.session.scene_for_preview(check.scene)
        try:
            preview = self.previews.compute(scene)
        except MasksNeeded as exc:
            return PreviewOut(version=check.version, ok=False, needs_masks=[exc.index])
        except SceneError as exc:
            return PreviewOut(version=check.version, ok=False, problems=exc.issues)
        except UserError as exc:
            return PreviewOut(version=check.version, ok=False, problems=[str(exc)])
        info = preview.info()
        return PreviewOut(version=check.version, ok=True, layout_url=f"/api/preview/{preview.key}/layout.jpg", **info)

    def layer(self, version: int, index: int, action: str) -> SceneOut:
        """Move an instance in the layer order by writing `z` (R11)."""
        check = self.session.state()
        if check.scene is None:
            raise NotReady("fix the scene's problems first; the layer order needs a valid scene")
        scene = self.session.scene_for_preview(check.scene)
        try:
            comp = self.previews.compute(scene).composition
        except MasksNeeded as exc:
            raise NotReady(f"instance {exc.index} waits for its SAM mask; compute masks first") from None
        ops = z_ops(scene, comp, index, action)
        return self.scene_out(self.session.edit(ops, version) if ops else check)

    def start_render(self) -> Job:
        check = self._ready("render")
        s = self.session
        text, disk, seed = check.text, s.disk_text, s.random_seed
        return self.jobs.submit("render", lambda job: self.renderer.run(job, text, disk, seed))

    def start_masks(self) -> Job:
        check = self._ready("masks")
        scene = check.scene
        if not any(i.mask_mode == "auto" for i in scene.instances):
            raise NotReady("no instance has `mask: auto`; there is nothing for SAM to do")
        return self.jobs.submit("masks", lambda job: self.masks.run(job, scene))

    def _ready(self, kind: str) -> Check:
        running = self.jobs.busy(kind)
        if running is not None:
            raise NotReady(f"{running.id} is still running; wait for it or cancel it")
        check = self.session.state()
        if check.scene is None:
            raise NotReady(f"the scene has {len(check.issues)} problem(s); fix them first")
        return check

    def close(self) -> None:
        """Cancel running jobs (kept in `stopped` for the command line to report) and drop the model."""
        self.stopped = self.jobs.shutdown()
        self.renderer.worker.close()
