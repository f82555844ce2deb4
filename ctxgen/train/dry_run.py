"""`--dry-run`: the config and the data checked, the trained parameters counted and memory estimated; no weights
are read and nothing is written.
"""

from __future__ import annotations

import importlib.util

from ctxgen.core.errors import UserError
from ctxgen.train.config import TrainConfig
from ctxgen.train.data import ExampleSource
from ctxgen.train.examples import ExampleOptions, build_example
from ctxgen.train.randomness import draw_choices

CHECKED_EXAMPLES = 4  # the first examples of step 0 are built end to end (decode, layout, masks)


def check_data(cfg: TrainConfig, examples: int = CHECKED_EXAMPLES) -> dict:
    """Open the dataset (and the mix), build the first examples of step 0; any problem is one UserError line."""
    data = cfg.doc.data
    source = ExampleSource(cfg.shards, cfg.doc.seed, data.mix)
    options = ExampleOptions(tuple(data.canvas), data.reference_area, data.text_len, data.box_scale, data.ica)
    lengths = []
    for index in range(min(examples, cfg.doc.train.batch)):
        rec = source.record(index)
        try:
            ex = build_example(rec, draw_choices(rec, data, cfg.doc.seed, 0, index), options)
        except UserError as exc:
            raise UserError(f"{cfg.shards}: record {rec.id}: {exc}") from None
        lengths.append(ex.tokens.seq_len)
    return {"records": source.n_records, "subsets": source.subset_counts(), "checked_examples": len(lengths),
            "seq_lens": lengths}


def dry_run(cfg: TrainConfig, refs: int = 3) -> dict:
    """What `ctxgen train … --dry-run` reports."""
    from ctxgen.train.estimate import estimate

    out = {"method": cfg.method, "config": str(cfg.source), "base": cfg.base, "init_adapter": cfg.init_adapter,
           "rank": cfg.rank, "alpha": cfg.alpha, "global_batch": cfg.doc.train.batch,
           "max_steps": cfg.doc.train.max_steps, "data": check_data(cfg)}
    est = estimate(cfg, refs)
    out["trainable_parameters"] = est.trainable
    out["memory"] = est.as_dict()
    out["memory"]["refs"] = refs
    warnings = []
    if cfg.doc.model.quantize == "nf4" or cfg.doc.optimizer.name == "adamw8bit":
        if importlib.util.find_spec("bitsandbytes") is None:
            warnings.append("nf4 / adamw8bit need bitsandbytes and a CUDA GPU at training time")
    if cfg.doc.optimizer.name == "prodigy" and importlib.util.find_spec("prodigyopt") is None:
        warnings.append("optimizer prodigy needs prodigyopt at training time")
    out["warnings"] = warnings
    return out
