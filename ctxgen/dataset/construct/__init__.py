"""Building an IMIG-style dataset from scratch (D3, D4; docs/construct.md): `ctxgen dataset construct`.

Stages, one module each: `prompts` (LLM or file), `t2i`, `detect`, `crop`, `repaint`, `segment`, `filter` (basic and
complex path), `references`, `compose`, `match` (flexible path). `config` reads CONSTRUCT.yaml (defaults = the D3/D4
thresholds), `filters` holds the pure D3/D4 rules, `store` the run folder (keys, atomic items, manifests),
`pipeline` runs a stage (resumable, serial / a process per device / Ray), `records` turns kept items into dataset
records and shards, `report` shows counts, rejection reasons and contact sheets.
"""
