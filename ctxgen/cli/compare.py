"""`ctxgen compare`: PSNR, SSIM and pixel differences between two renders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ctxgen.cli.app import app
from ctxgen.cli.console import emit, handle_errors, result_line
from ctxgen.cli.options import JsonResult


@app.command()
@handle_errors
def compare(
    a: Annotated[Path, typer.Argument(help="First image (e.g. a `--memory full` render).")],
    b: Annotated[Path, typer.Argument(help="Second image of the same scene and seed (e.g. `--memory low`).")],
    json_out: JsonResult = False,
) -> None:
    """How far two renders differ: PSNR, SSIM and pixel differences (judge a memory tier's quality cost)."""
    from ctxgen.outputs.compare import compare_images

    res = compare_images(a, b)
    if json_out:
        emit(res)
        return
    psnr = "inf (identical)" if res["psnr_db"] is None else f"{res['psnr_db']:.2f} dB"
    result_line(f"PSNR {psnr}  SSIM {res['ssim']:.4f}  max |diff| {res['max_abs_diff']}  "
                f"mean |diff| {res['mean_abs_diff']:.3f}  differing pixels {100 * res['differing_pixels']:.2f}%")
