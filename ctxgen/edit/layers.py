"""Layer order edits (R11): move an instance up, down, to the front or to the back by writing `z`.

The new order is checked with the same `layer_order` the compositor uses: first by changing this instance's
`z` alone, then, if no single value gives exactly the asked order, by writing every instance's `z` as its
rank. Torch-free.
"""

from __future__ import annotations

from ctxgen.edit.yamledit import EditError, Op
from ctxgen.layout.compose import Composition
from ctxgen.layout.layering import layer_order
from ctxgen.scene.model import Scene


def target_order(order: list[int], index: int, action: str) -> list[int]:
    """The bottom -> top order after moving `index` one step up/down, or to the front/back."""
    pos = order.index(index)
    rest = order[:pos] + order[pos + 1:]
    if action == "front":
        return rest + [index]
    if action == "back":
        return [index] + rest
    to = min(pos + 1, len(order) - 1) if action == "up" else max(pos - 1, 0)
    return rest[:to] + [index] + rest[to:]


def z_ops(scene: Scene, comp: Composition, index: int, action: str) -> list[Op]:
    """The `z` edits that give the asked layer order (none when it already is)."""
    if not comp.order:
        raise EditError("a scene with a `layout:` image has no layers to reorder; remove `layout:` first")
    if not 0 <= index < len(scene.instances):
        raise EditError(f"no instance {index}")
    order = list(comp.order)
    want = target_order(order, index, action)
    if want == order:
        return []
    zs = [inst.z for inst in scene.instances]
    seed = scene.seeds[0]
    for z in _candidates(zs, want, index):
        trial = zs[:index] + [z] + zs[index + 1:]
        if list(layer_order(comp.layer_masks, trial, seed)) == want:
            return [Op("set", ("instances", index, "z"), z)]
    ranks = {j: r + 1 for r, j in enumerate(want)}
    return [Op("set", ("instances", j, "z"), ranks[j]) for j in range(len(zs)) if zs[j] != ranks[j]]


def _candidates(zs: list[int | None], want: list[int], index: int) -> list[int]:
    """Single `z` values worth trying for `index`: level with, just above and just below its new neighbours."""
    keys = [0 if z is None else z for z in zs]
    pos = want.index(index)
    out: list[int] = []
    for j in want[max(0, pos - 1): pos] + want[pos + 1: pos + 2]:
        out += [keys[j], keys[j] + 1, keys[j] - 1]
    if pos == len(want) - 1:
        out.append(max(keys) + 1)
    if pos == 0:
        out.append(min(keys) - 1)
    return list(dict.fromkeys(out))
