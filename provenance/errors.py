"""Typed errors: InputError maps to exit code 2 with one clear line; anything else is an internal failure."""

from __future__ import annotations


class ProvenanceError(Exception):
    """Base class for errors the tool reports to the user."""

    exit_code = 1


class InputError(ProvenanceError):
    """The user gave something we cannot use (bad spec, missing file, unreachable endpoint)."""

    exit_code = 2


class CapabilityError(InputError):
    """A backend lacks an access level a test or command needs."""


class UnsafeCheckpointError(InputError):
    """A checkpoint would need code execution (pickle, remote code) to load."""


class EndpointError(InputError):
    """An HTTP endpoint failed in a way retries cannot fix."""
