"""Vision model roles shared by evaluation and dataset construction: detector (Grounding DINO), segmenter
(SAM 2.1), embedders (DINOv2, DINO, CLIP), VQA, face, aesthetic; each with `tiny-random` and `reference` variants.
"""
