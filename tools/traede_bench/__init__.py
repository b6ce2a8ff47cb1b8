"""The benchmark: where the handlers' time goes, on the local stack (`make bench`), and what it costs (`make cost`).

Modules: `timing` (call hooks and the wall-clock breakdown), `scenarios` (what is run, on the local
stack's parts), `poll_worker` (the poll in a fresh interpreter), `receiver_worker` (the receiving system in a
process of its own), `report` (results.json, the
markdown table, the plot), `cost` (monthly AWS cost and backlog drain from the per-order figures),
`mapping_bench`, `measure_claims`, `measure_roundtrips` and `cold_start` (focused measurements), `doc` (each
command's marked block of docs/benchmarks.md).
"""
