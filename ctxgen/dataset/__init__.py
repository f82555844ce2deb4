"""Training data as a product: records (a scene + its target image) in Parquet shards (docs/dataset.md).

Torch-free. `record` holds the frozen Record / InstanceRecord / ImageData; `arrow` the Parquet schema and the
Record <-> row conversions; `shards` the atomic writer and `DatasetReader` (random access, seeded resumable
streams); `build` the chunked, resumable, multi-process writer; `checks` what a valid record is; `scenes` / `extras`
and `export` pack scene files and write them back; `imig` imports IMIG-100K; `synthetic` makes a deterministic
dataset; `preview` and `stats` show one record and the whole set.
"""
