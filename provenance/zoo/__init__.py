"""Models of known lineage, made from the packaged teachers (ground truth for tests and benchmarks)."""
