"""`ctxgen mask`: SAM 2.1 mask of one reference, plus a preview to check it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ctxgen.cli.app import app
from ctxgen.cli.console import handle_errors, result_line
from ctxgen.cli.options import Device, SamModel
from ctxgen.core.errors import UsageError


def parse_floats(text: str | None, n: int, flag: str) -> tuple[float, ...] | None:
    """`X,Y` or `X1,Y1,X2,Y2` -> floats; anything else is a usage error."""
    if text is None:
        return None
    try:
        vals = tuple(float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        vals = ()
    if len(vals) != n:
        raise UsageError(f"{flag} {text!r}: expected {n} comma-separated numbers")
    return vals


@app.command()
@handle_errors
def mask(
    ref: Annotated[Path, typer.Argument(help="Reference image (a plain photo).")],
    point: Annotated[Optional[str], typer.Option("--point", help="X,Y in the reference's pixels.")] = None,
    box: Annotated[Optional[str], typer.Option("--box", help="X1,Y1,X2,Y2 in the reference's pixels.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Mask file (default REF.mask.png).")] = None,
    sam_model: SamModel = "large",
    device: Device = "auto",
) -> None:
    """Segment a reference's subject with SAM 2.1; writes the mask and a preview to check."""
    from ctxgen.models.loading import resolve_device
    from ctxgen.models.sam import load_sam, segment, write_mask_outputs
    from ctxgen.scene.images import read_image_rgb

    pt = parse_floats(point, 2, "--point")
    bx = parse_floats(box, 4, "--box")
    dev = str(resolve_device(device))
    rgb = read_image_rgb(ref)
    model = load_sam(sam_model, dev)
    result = segment(model, rgb, point=pt, box=bx, where=str(ref))
    target = out if out is not None else ref.with_name(f"{ref.stem}.mask.png")
    for path in write_mask_outputs(rgb, result, target, point=pt, box=bx):
        result_line(str(path))
