"""`ctxgen validate` for one file: schema, geometry and image checks run together and report together (R1, R2).

Torch-free.
"""

from __future__ import annotations

from pathlib import Path

from ctxgen.core.errors import SceneError
from ctxgen.scene.images import Issues, check_references, reference_issues, user_layout_issues
from ctxgen.scene.marks import issue_position
from ctxgen.scene.model import Scene, load_scene


def check_scene_file(path: str | Path) -> Scene:
    """`ctxgen validate`: schema, geometry and image checks together; every problem of the file in one SceneError.

    When the document itself has problems, the images whose fields are still valid are checked as well, so one
    run reports everything (checks that depend on a field already reported as broken are skipped).
    """
    try:
        scene = load_scene(path)
    except SceneError as exc:
        if exc.partial is None:
            raise
        part = exc.partial
        issues: Issues = []
        for inst in part.instances:
            reference_issues(inst, issues)
        user_layout_issues(part.layout, issues)
        lines = exc.issues + [part.issue(field, msg) for field, msg in issues]
        raise SceneError(sorted(set(lines), key=lambda ln: (*issue_position(ln, part.display_path), ln))) from None
    check_references(scene)
    return scene
