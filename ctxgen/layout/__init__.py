"""Stage 2, layout: reference resizing, box placement, layering and the composite layout image (R4-R12).

Torch-free. `geometry` and `layering` are pure arithmetic; `compose` builds the Composition; `preview` draws it.
"""
