"""Prompt scoring from outside: the tokens an endpoint scored (echo, prompt_logprobs) and the continuation in them."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Sequence

from provenance.evidence import Score

# A logprob above this is not a log-probability (a server's junk, not rounding: exact ones are <= 0).
MAX_LOGPROB = 1e-3


class Unplaceable(ValueError):
    """The endpoint's answer does not let the continuation be located or scored (one line, no server text)."""


@dataclass(frozen=True)
class ScoredToken:
    """One token of the text as the server scored it."""

    text: str | None  # the server's text of the token; None where it gives none (vLLM's first prompt position)
    start: int | None  # offset in the server's rendering of the text; None only for the first token, when unknown
    logprob: float | None  # None: the server gives none (the text's first token has no context to be predicted from)


def _logprob(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or \
            value > MAX_LOGPROB:
        raise Unplaceable(f"{what} is not a log-probability")
    return float(value)


def echo_tokens(logprobs: Any, n_generated: int) -> tuple[list[ScoredToken], int]:
    """(the echoed tokens, where the echoed text ends) from legacy completions logprobs answered with echo.

    `tokens`, `token_logprobs` and `text_offset` are parallel lists: the prompt's tokens (the first logprob null), then
    the `n_generated` generated ones. The echo ends where the first generated token starts (its offset), or after the
    last echoed token when none was generated.
    """
    if not isinstance(logprobs, dict):
        raise Unplaceable("the answer has no echoed logprobs")
    tokens, lps, offsets = logprobs.get("tokens"), logprobs.get("token_logprobs"), logprobs.get("text_offset")
    if not (isinstance(tokens, list) and isinstance(lps, list) and isinstance(offsets, list)) or \
            not len(tokens) == len(lps) == len(offsets):
        raise Unplaceable("the echoed logprobs lack parallel tokens, token_logprobs and text_offset lists")
    if not all(isinstance(t, str) for t in tokens) or \
            not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets):
        raise Unplaceable("the echoed tokens or offsets are of the wrong type")
    n_echo = len(tokens) - n_generated
    if n_echo < 1:
        raise Unplaceable("no prompt tokens were echoed (the endpoint ignored echo)")
    out = [ScoredToken(tokens[i], offsets[i], _logprob(lps[i], "an echoed token_logprob")) for i in range(n_echo)]
    end = offsets[n_echo] if n_generated else offsets[n_echo - 1] + len(tokens[n_echo - 1])
    return out, end


def _actual(entry: dict[str, Any]) -> dict[str, Any]:
    """The prompt token's own entry in one position of vLLM's prompt_logprobs (token id -> {logprob, rank, ...}).

    Newer vLLM puts the prompt token first, then the top-k (vllm/logprobs.py `append_logprobs_for_next_position`);
    older V1 appended it last, and only when it was not among the top-k (vllm/v1/engine/logprobs.py
    `_make_pos_logprob_dict`). Either way, with top-1 requested, the prompt token is the only entry, or the entry not of
    rank 1; without ranks, the least likely entry (the top-1 is never less likely than the prompt token).
    """
    values = [v for v in entry.values() if isinstance(v, dict)]
    if not values or len(values) != len(entry):
        raise Unplaceable("a prompt_logprobs entry is not a map of token ids to logprobs")
    if len(values) == 1:
        return values[0]
    not_top = [v for v in values if v.get("rank") != 1]
    if len(not_top) == 1:
        return not_top[0]
    return min(values, key=lambda v: v.get("logprob") if isinstance(v.get("logprob"), (int, float)) else math.inf)


def prompt_logprob_tokens(entries: Any) -> tuple[list[ScoredToken], int]:
    """(the prompt's tokens, where its text ends) from vLLM's `prompt_logprobs`: a list, first None, then per position
    a map token id -> {logprob, rank, decoded_token}. No offsets are given: each token starts where the decoded text of
    the tokens before it ends, counted from the second token (the first one's text is not given)."""
    if not isinstance(entries, list) or len(entries) < 2 or entries[0] is not None:
        raise Unplaceable("the answer has no prompt_logprobs list (first entry null)")
    out = [ScoredToken(None, None, None)]
    pos = 0
    for entry in entries[1:]:
        if not isinstance(entry, dict):
            raise Unplaceable("a prompt_logprobs entry after the first is not a map")
        tok = _actual(entry)
        text = tok.get("decoded_token")
        if not isinstance(text, str):
            raise Unplaceable("a prompt_logprobs entry has no decoded_token text")
        lp = _logprob(tok.get("logprob"), "a prompt logprob")
        if lp is None:
            raise Unplaceable("a prompt_logprobs entry after the first has no logprob")
        out.append(ScoredToken(text, pos, lp))
        pos += len(text)
    return out, pos


def _checkable(text: str) -> bool:
    """A token text that must be the text at its place: not empty, not part of a character (vLLM decodes each byte of
    a split character to U+FFFD; the OpenAI API writes such tokens as 'bytes:\\x..')."""
    return bool(text) and "\ufffd" not in text and not text.startswith("bytes:")


# Where the continuation's tokens are: (index of each counted token, the byte offset in the continuation where it
# starts, clamped at 0 for the one straddling the boundary).
Placement = list[tuple[int, int]]


def _by_offsets(tokens: Sequence[ScoredToken], end: int, continuation: str) -> Placement:
    """The server's offsets, anchored at the end of the scored text; each counted token's text checked against the
    continuation where the offsets put it (an Unplaceable when one differs)."""
    known = [t.start for t in tokens if t.start is not None]
    if any(t.start is None for t in tokens[1:]) or any(a > b for a, b in zip(known, known[1:])) or \
            (known and end < known[-1]):
        raise Unplaceable("the scored tokens' offsets do not increase")
    boundary = end - len(continuation)
    # Each token spans [start, next token's start); an unknown start (the first token's) lies before everything.
    starts = [-math.inf if t.start is None else float(t.start) for t in tokens]
    ends = [*starts[1:], float(end)]
    if boundary < starts[0]:
        raise Unplaceable("the scored tokens cover less text than the continuation (the prompt was not echoed)")
    out: Placement = []
    for i, tok in enumerate(tokens):
        s, e = starts[i], ends[i]
        if not (s >= boundary or s < boundary < e):
            continue
        if tok.start is not None and tok.text is not None and _checkable(tok.text) and e - s == len(tok.text):
            lo = max(tok.start, boundary)
            if tok.text[lo - tok.start:] != continuation[lo - boundary: int(e) - boundary]:
                raise Unplaceable(f"the scored token at offset {tok.start} is not the continuation's text there (the "
                                  "endpoint's offsets or token text do not follow the text sent)")
        lo_char = int(max(s, boundary) - boundary) if s != -math.inf else 0
        out.append((i, len(continuation[:lo_char].encode("utf-8"))))
    return out


MATCH_BUDGET = 200_000  # pattern matches one placement may try: a hostile answer cannot make it quadratic for long
_PART = rb"[\x80-\xff]{1,3}"  # what one U+FFFD of a token decoded alone stands for: bytes of a multi-byte character


def _pattern(text: str) -> tuple[re.Pattern[bytes], int, int]:
    """A token's text as a bytes pattern, and its shortest and longest byte length: its characters exactly, each
    U+FFFD as 1-3 bytes of a split character, OpenAI's 'bytes:\\x..' tokens as 1-4 such bytes."""
    if text.startswith("bytes:"):
        return re.compile(rb"[\x80-\xff]{1,4}"), 1, 4
    parts = [p.encode("utf-8") for p in text.split("\ufffd")]
    literal, wild = sum(len(p) for p in parts), len(parts) - 1
    return re.compile(_PART.join(re.escape(p) for p in parts)), literal + wild, literal + 3 * wild


def _straddles(text: str, head: bytes) -> bool:
    """Whether the token's text ends with `head` (the continuation's first bytes) and has more before it."""
    return any(_pattern(text[j:])[0].fullmatch(head) for j in range(1, len(text)))


def _by_text(tokens: Sequence[ScoredToken], continuation: str) -> Placement | None:
    """The tokens' own texts matched to the continuation's bytes from its end back (offsets ignored): for a server
    whose offsets are lengths of tokens decoded alone, which drift at a split character (vLLM writes U+FFFD for each
    byte of it). Back from the end until a token starts exactly at the continuation's start (then any empty tokens
    just before it, the leading bytes of its first character, are counted too) or straddles it; the first token,
    whose text may be unknown, takes whatever is left. None when the texts do not spell the continuation."""
    cont = continuation.encode("utf-8")
    reach: dict[int, list[tuple[int, int]]] = {len(cont): []}  # byte position -> the tokens placed after it
    budget = MATCH_BUDGET
    for i in range(len(tokens) - 1, -1, -1):
        text = tokens[i].text
        if text is None:
            if i != 0:
                return None
            pos = min(reach)
            return [(0, 0), *reach[pos]]
        pattern, shortest, longest = _pattern(text)
        nxt: dict[int, list[tuple[int, int]]] = {}
        straddling: list[tuple[int, int]] | None = None
        for q, placed in reach.items():
            budget -= (longest - shortest + 1) + len(text)
            if budget < 0:
                return None
            for p in range(max(q - longest, 0), q - shortest + 1):
                if pattern.fullmatch(cont, p, q):
                    nxt.setdefault(p, [(i, p), *placed])
            if straddling is None and 0 < q and _straddles(text, cont[:q]):
                straddling = [(i, 0), *placed]
        if 0 not in nxt and straddling is not None:
            return straddling
        if 0 in nxt:
            out, k = nxt[0], i
            while k > 0 and tokens[k - 1].text == "":
                k -= 1
                out = [(k, 0), *out]
            return out
        if not nxt:
            return None
        reach = nxt
    return None


def locate(tokens: Sequence[ScoredToken], end: int, continuation: str) -> Score:
    """The continuation's Score from the scored tokens of the whole text (prompt then continuation).

    Where the continuation starts: `end - len(continuation)`, counted back from where the scored text ends. A server's
    offsets may begin with text the prompt does not have (vLLM's offsets include the BOS token's text, '<s>': they are
    cumulative lengths of the decoded tokens, vllm/entrypoints/openai/completion/serving.py
    `_create_completion_logprobs`) or lack it (llama-cpp-python drops the BOS), so they are anchored at the end.
    Each counted token's text, where it is whole characters, must be the continuation's text at its place. Where a
    character split over several tokens was decoded one token at a time (U+FFFD for each part, so offsets summed from
    those texts drift), or the offsets do not check, the tokens' texts are matched to the continuation's bytes
    instead, from its end back; when neither works, nothing is scored (Unplaceable: never a plausible wrong score).

    Which tokens are the continuation's: every token starting at or after that point, and the token that straddles it
    (starts before, ends after: the prompt's last characters and the continuation's first merged into one token). The
    straddling token is counted with the continuation: without it the continuation's first characters would not be
    scored at all; its logprob then also carries those prompt characters (usually one space or newline).

    Fields as HFBackend.score gives them: `logprob` is the sum over the counted tokens; `n_tokens` counts them (the
    server's joint tokenization of prompt and continuation, where HFBackend encodes the two separately); `n_bytes` is
    the continuation's UTF-8 bytes. One exception: when the text's first token is the continuation's (an empty prompt
    to a server that adds no BOS token), it has no logprob; it is left out of `logprob` and `n_tokens`, and its bytes
    out of `n_bytes`, so `per_byte` stays a rate over the text that was scored (HFBackend scores it after a BOS token).
    """
    if not continuation:
        return Score(0.0, 0, 0)
    if not tokens:
        raise Unplaceable("no scored tokens")
    # A token decoded to U+FFFD has a text length that is not its length in the text: offsets summed from such lengths
    # (vLLM's) drift after it, silently where no whole token before it is left to check. Its texts are matched instead.
    by_text = _by_text(tokens, continuation) if any("\ufffd" in (t.text or "") for t in tokens) else None
    if by_text is not None:
        placed = by_text
    else:
        try:
            placed = _by_offsets(tokens, end, continuation)
        except Unplaceable as exc:
            placed = _by_text(tokens, continuation)  # offsets of another origin than the texts: the texts may do
            if placed is None:
                raise exc from None
    total, count, scored_from = 0.0, 0, None
    for i, start in placed:
        lp = tokens[i].logprob
        if lp is None:
            if i != 0:
                raise Unplaceable("a token inside the continuation has no logprob")
            continue  # the text's first token: nothing to predict it from
        if scored_from is None:
            scored_from = start
        total += lp
        count += 1
    if scored_from is None:
        return Score(0.0, 0, 0)
    return Score(total, count, len(continuation.encode("utf-8")) - scored_from)


__all__ = ["ScoredToken", "Unplaceable", "echo_tokens", "locate", "prompt_logprob_tokens"]
