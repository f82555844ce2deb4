"""`ctxgen layout` and `ctxgen mask`: everything up to the token plan, no diffusion model."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from .console import emit, report_error, result_line, warn
from .errors import EXIT_FAILED, EXIT_OK, UserError
from .fsio import write_bytes
from .outputs import save_pil, scene_out_dirs
from .scene import Scene, load_scene
from .sources import collect_scenes

log = logging.getLogger(__name__)


def needs_sam(scene: Scene) -> bool:
    return any(inst.mask_mode == "auto" for inst in scene.instances)


def scene_segmenter(scene: Scene, sam_model: str, device: str, cache_root: Path):
    """A SAM 2 segmenter for scenes with `mask: auto`, else None (SAM is loaded lazily, on first use)."""
    if not needs_sam(scene):
        return None
    from .models.loading import resolve_device
    from .segment import make_segmenter

    return make_segmenter(sam_model, str(resolve_device(device)), cache_root)


def run_layout(args: list[str], out: Path, preview: bool, dump: bool, text_len: int, json_out: bool,
               sam_model: str, device: str) -> int:
    """Per scene: layout.png, and optionally preview.png, tokens.npz and order.json; returns the exit code."""
    paths = collect_scenes(args)
    dirs = scene_out_dirs(paths, out)
    failed = 0
    for path in paths:
        try:
            written = _layout_one(path, dirs[path], preview, dump, text_len, sam_model, device)
        except UserError as exc:
            failed += 1
            report_error(exc)
            if json_out:
                emit({"scene": str(path), "ok": False, "errors": getattr(exc, "issues", [str(exc)])})
            continue
        if json_out:
            emit({"scene": str(path), "ok": True, "files": {k: str(v) for k, v in written.items()}})
        else:
            for file in written.values():
                result_line(str(file))
    return EXIT_FAILED if failed else EXIT_OK


def _layout_one(path: Path, out_dir: Path, preview: bool, dump: bool, text_len: int, sam_model: str,
                device: str) -> dict[str, Path]:
    """Compute everything in memory first, then write; a bad scene writes nothing."""
    from .layout import layout_to_pil
    from .masks import write_dump
    from .plan import plan_scene

    scene = load_scene(path)
    for warning in scene.warnings:
        warn(warning)
    segmenter = scene_segmenter(scene, sam_model, device, out_dir.parent / ".cache" / "masks")
    sp = plan_scene(scene, text_len, segmenter)
    images = {"layout": layout_to_pil(sp.layout)}
    if preview:
        from .preview import render_preview

        images["preview"] = render_preview(sp.layout, scene)
    existed = out_dir.exists()
    written: dict[str, Path] = {}
    try:
        for name, im in images.items():
            written[name] = save_pil(out_dir / f"{name}.png", im)
        if dump:
            write_dump(out_dir / "tokens.npz", sp.tokens, sp.masks)
            written["tokens"] = out_dir / "tokens.npz"
            order = {"order": list(sp.layout.order), "bottom_to_top": True,
                     "labels": [inst.label for inst in scene.instances]}
            written["order"] = write_bytes(out_dir / "order.json", (json.dumps(order, indent=2) + "\n").encode())
    except BaseException:
        _undo(written.values(), out_dir if not existed else None)
        raise
    return written


def _undo(paths, folder: Path | None) -> None:
    """Remove the files a failed scene already wrote (and its folder if this call created it)."""
    for path in paths:
        path.unlink(missing_ok=True)
    if folder is not None and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def run_mask(ref: Path, point, box, out: Path | None, sam_model: str, device: str) -> list[Path]:
    """`ctxgen mask`: segment one reference and write the mask and its preview."""
    from .images import read_image_rgb
    from .segment import load_sam, segment, write_mask_outputs

    from .models.loading import resolve_device

    rgb = read_image_rgb(ref)
    model = load_sam(sam_model, str(resolve_device(device)))
    mask = segment(model, rgb, point=point, box=box, where=str(ref))
    target = out if out is not None else ref.with_name(f"{ref.stem}.mask.png")
    return list(write_mask_outputs(rgb, mask, target, point=point, box=box))
