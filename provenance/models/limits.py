"""Per-run request and token limits for endpoints (`--max-requests`, `--max-tokens`): charged before each request."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from provenance.errors import InputError


class LimitReached(InputError):
    """An endpoint would exceed a limit the user set; what was answered so far is cached, so a rerun goes on."""


@dataclass
class Usage:
    """Requests and new-token allowance spent per endpoint in this run (one object shared by every LoadOptions copy of
    a command; fleet workers each hold their own copy, so there the limit is per worker)."""

    spent: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def charge(self, endpoint: str, requests: int, new_tokens: int, max_requests: int | None,
               max_tokens: int | None) -> None:
        """Count a batch of `requests` that may generate `new_tokens` tokens in all, or refuse the whole batch before
        any of it is sent (nothing counted): the batches before it are complete and cached."""
        with self.lock:
            n, tok = self.spent.get(endpoint, [0, 0])
            if max_requests is not None and n + requests > max_requests:
                raise LimitReached(f"{endpoint}: --max-requests {max_requests} reached; the answers so far are cached, "
                                   "rerun with a higher limit to go on")
            if max_tokens is not None and tok + new_tokens > max_tokens:
                raise LimitReached(f"{endpoint}: --max-tokens {max_tokens} would be exceeded (at most {tok} new tokens "
                                   "requested so far); the answers so far are cached, rerun with a higher limit to go on")
            self.spent[endpoint] = [n + requests, tok + new_tokens]

    def __getstate__(self) -> dict[str, object]:  # a lock does not pickle (fleet workers, spawn)
        return {"spent": dict(self.spent)}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.spent = dict(state["spent"])  # type: ignore[arg-type]
        self.lock = threading.Lock()
