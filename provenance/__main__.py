"""Allow `python -m provenance`."""

from provenance.cli import main

main()
