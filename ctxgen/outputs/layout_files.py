"""`ctxgen layout` outputs of one prepared scene: layout.png, preview.png, tokens.npz and order.json.

Everything is computed in memory first and written after; a failure removes what this call already wrote.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from ctxgen.core.fsio import write_png, write_text
from ctxgen.sequence.prepare import PreparedScene


def layout_images(sp: PreparedScene, preview: bool) -> dict:
    """The layout image (and the preview) as PIL images, by file stem."""
    from ctxgen.layout.compose import layout_to_pil

    images = {"layout": layout_to_pil(sp.composition)}
    if preview:
        from ctxgen.layout.preview import render_preview

        images["preview"] = render_preview(sp.composition, sp.scene)
    return images


def order_json(sp: PreparedScene) -> str:
    """The layer order, bottom to top, with the instances' labels (order.json)."""
    order = {"order": list(sp.composition.order), "bottom_to_top": True,
             "labels": [inst.label for inst in sp.scene.instances]}
    return json.dumps(order, indent=2) + "\n"


def write_layout_outputs(sp: PreparedScene, out_dir: Path, preview: bool, dump: bool) -> dict[str, Path]:
    """Write the layout outputs of one scene into `out_dir`; all or nothing."""
    from ctxgen.sequence.dump import write_dump

    images = layout_images(sp, preview)
    existed = out_dir.exists()
    written: dict[str, Path] = {}
    try:
        for name, im in images.items():
            written[name] = write_png(out_dir / f"{name}.png", im)
        if dump:
            written["tokens"] = write_dump(out_dir / "tokens.npz", sp.tokens, sp.masks)
            written["order"] = write_text(out_dir / "order.json", order_json(sp))
    except BaseException:
        _undo(written.values(), out_dir if not existed else None)
        raise
    return written


def _undo(paths: Iterable[Path], folder: Path | None) -> None:
    """Remove the files a failed scene already wrote (and its folder if this call created it)."""
    for path in paths:
        path.unlink(missing_ok=True)
    if folder is not None and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
