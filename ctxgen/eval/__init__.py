"""Evaluation on the paper's benchmarks (E1-E5; docs/eval.md): COCO-MIG, LayoutSAM-Eval, LAMICBench++ and
identity scores, with the published formulas; model roles come from `ctxgen.vision`.
"""
