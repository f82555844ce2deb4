"""The batch engine: many scenes, seeds and devices, resumable by key (docs: README, "Batches").

`types` (options, items, records, events) is the bottom; `job` renders one scene; `plan` checks a batch; `run`
dispatches to one backend: `serial` (this process), `pool` (+ `pool_worker`, a process per device) or `ray`.
Backends depend on `job` and `types`, never on each other. The engine never prints: records and notices go to
`BatchEvents`, and the command line shows them.
"""
