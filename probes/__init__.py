"""The provenance probe library: versioned probe sets as JSON data files (see docs/probes.md)."""
