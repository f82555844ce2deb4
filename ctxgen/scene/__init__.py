"""Stage 1, scenes: the YAML schema with `file:line:col` errors, safe image decoding and masks (R1, R2, R8).

Torch-free. `ctxgen.scene.model` holds `Scene` / `Instance` / `load_scene`; `images` decodes references,
masks and user layouts; `sources` expands files, folders, globs and lists into scene paths.
"""

from ctxgen.scene.model import Instance, Scene, load_scene

__all__ = ["Instance", "Scene", "load_scene"]
