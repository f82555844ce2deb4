"""Run the ctxgen CLI with a pause injected into its own atomic-write layer, for signal and kill tests.

  python tests/inject.py WHEN MARKER -- CLI ARGS...

WHEN is `publish:REGEX` (pause before renaming a staged file whose target path matches REGEX into place) or
`stage:REGEX` (pause while the temp file of a matching target is being written) or `check`
(pause in the validate image checks). The script touches MARKER when the pause starts, then sleeps up to
60 s, so a test can send its signal at exactly that moment.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from ctxgen.core import fsio


def pause(marker: Path) -> None:
    marker.write_text("paused")
    time.sleep(60)


def main() -> None:
    when, marker, sep, *args = sys.argv[1:]
    assert sep == "--", "usage: inject.py WHEN MARKER -- ARGS"
    kind, _, pattern = when.partition(":")
    matches = re.compile(pattern).search
    marker_path = Path(marker)
    if kind == "publish":
        real_publish = fsio.publish

        def publish(tmp, path):
            if matches(str(path)):
                pause(marker_path)
            return real_publish(tmp, path)

        fsio.publish = publish
    elif kind == "stage":
        real_stage = fsio.stage

        def stage(path, writer):
            if not matches(str(path)):
                return real_stage(path, writer)

            def slow_writer(fh):  # the signal arrives while the temp file is being written
                writer(fh)
                pause(marker_path)

            return real_stage(path, slow_writer)

        fsio.stage = stage
    elif kind == "check":
        import ctxgen.scene.images as images

        real_check = images.check_references

        def check(scene):
            pause(marker_path)
            return real_check(scene)

        images.check_references = check
    sys.argv = ["ctxgen", *args]
    from ctxgen.__main__ import main as ctxgen_main

    ctxgen_main()


if __name__ == "__main__":
    main()
