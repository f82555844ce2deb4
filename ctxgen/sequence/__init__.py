"""Stage 3, the token sequence: prompt template, spans and position ids, CLA/ICA masks (R3, R13-R19).

Torch-free. `prepare.prepare_scene` runs stages 1-3 for one scene: references, composition, tokens, masks.
"""
