"""provenance: statistical evidence on whether one language model was distilled or derived from another."""

__version__ = "0.1.0"
