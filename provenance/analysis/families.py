"""The built-in test families, each a thin adapter from a PairContext to one function in provenance.stats."""

from __future__ import annotations

from provenance.analysis.base import PairContext, TestFamily, register
from provenance.evidence import score_item_id
from provenance.models.access import EndpointAccess
from provenance.stats import behaviour, capable_likelihood, identity, likelihood, outside_likelihood, weights
from provenance.stats.base import TestResult
from provenance.stats.behaviour import Panel, next_token_divergence, output_agreement
from provenance.stats.identity import identity_claims
from provenance.stats.likelihood import reference_likelihood
from provenance.stats.nulls import lineage_unit
from provenance.stats.weights import weight_permutation_test


def _panel(ctx: PairContext, role: str) -> Panel | None:
    plan = ctx.plans.get(role)
    if plan is None:
        return None
    ev = ctx.evidence
    return Panel(tuple(p.id for p in plan.probes), {k: e.answers[plan.probe_set.id] for k, e in ev.items()
                                                    if plan.probe_set.id in e.answers},
                 {k: e.tokenizer_id for k, e in ev.items()})


def _asked_as_chat(ctx: PairContext, model: str) -> bool:
    """Whether this model's completion probes went to it as chat messages (a chat-only endpoint)."""
    access = (ctx.evidence[model].endpoint or {}).get("access")
    return bool(access) and EndpointAccess.from_json(access).completion_as_chat()


def _output(ctx: PairContext) -> TestResult:
    panel = _panel(ctx, "output")
    if panel is None:
        return TestResult.skip("output_agreement", "no continuation probes were planned")
    r = output_agreement(panel, ctx.design)
    models = [ctx.design.suspect, ctx.design.reference, *ctx.design.controls]
    as_chat = [m for m in models if _asked_as_chat(ctx, m)]
    if r.skipped is None and 0 < len(as_chat) < len(models):
        # Not a threat to the level (a model asked otherwise agrees with no one, so it has no interaction with the
        # reference), but a reader must not take this family's p as evidence either way (BENCHMARKS.md, "Chat
        # distillation served chat-only": p = 0.56 for every chat student).
        r.details["asked_differently"] = {
            "as_chat": as_chat,
            "note": "these models got the continuation probes as chat messages with an instruction to continue, the "
                    "others as plain completions: their answers are not comparable, and this family has little power"}
        kind = r.details.get("kind_check")
        if kind and any(m != ctx.design.reference for m in as_chat):  # the row effects involve suspect and controls
            # The row effect then measures the rendering as well as the kind: a chat-only suspect beside
            # completion-served controls can agree with them less whatever its lineage (SC5120 and SC2560 of
            # BENCHMARKS.md's chat bench: affinity 0 with every model, p = 0.046).
            # The kind is still checked where it is comparable: competence on neutral text, or the fluency of the
            # suspect's sampled answers from the outside (evaluate.py).
            kind["suspect_out_of_kind_as_measured"] = kind["suspect_out_of_kind"]
            kind["suspect_out_of_kind"] = False
            kind["not_comparable"] = "the models were asked differently (asked_differently): not used as a kind check"
    return r


def _next_token(ctx: PairContext) -> TestResult:
    panel = _panel(ctx, "next_token")
    if panel is None:
        return TestResult.skip("next_token_divergence", "no next-token probes were planned")
    return next_token_divergence(panel, ctx.design)


def _likelihood(ctx: PairContext) -> TestResult:
    plan = ctx.plans.get("likelihood")
    if plan is None:
        return TestResult.skip("reference_likelihood", "not run: disabled, or the suspect gives no log-likelihoods "
                                                       "(text or top-k access only)")
    ev = ctx.evidence
    return reference_likelihood({k: e.scores for k, e in ev.items()}, [p.id for p in plan.probes],
                                {k: e.model.fingerprint for k, e in ev.items()}, ctx.design)


def _capable(ctx: PairContext) -> TestResult:
    plan = ctx.plans.get("likelihood")
    if plan is None:
        return TestResult.skip(capable_likelihood.NAME, "not run: disabled, or the suspect gives no log-likelihoods "
                                                        "(text or top-k access only)")
    if not ctx.sources:
        return TestResult.skip(capable_likelihood.NAME, "no comparison sources answered the likelihood prompts (the "
                                                        "packaged models are not installed, or none is independent of "
                                                        "the reference)")
    d = ctx.design
    ids = [p.id for p in plan.probes]
    need = [d.reference, *ctx.sources]
    # Only sources the model scored in full: a partial row is no row (tetrad_test leaves the model out).
    scores = {m: {s: got for s in need if (got := scored(ctx, m, s, ids)) is not None} for m in [d.suspect, *d.controls]}
    return capable_likelihood.tetrad_test(scores, d.suspect, d.reference, ctx.sources, d.units,
                                          source_units(ctx, need), ids)


def scored(ctx: PairContext, scorer: str, answerer: str, ids: list[str]) -> list[float] | None:
    """The per-byte log-likelihoods `scorer` gave `answerer`'s sampled answers to the prompts `ids`, or None unless
    it scored every one (a partial row is no row)."""
    ev = ctx.evidence
    sc, fp = ev[scorer].scores, ev[answerer].model.fingerprint
    keys = [score_item_id(p, fp) for p in ids]
    return [sc[k].per_byte for k in keys] if all(k in sc for k in keys) else None


def source_units(ctx: PairContext, need: list[str]) -> dict[str, str]:
    """Each source's lineage in the Design's unit keys (evaluate.design_for), so a unit never meets its own lineage's
    answers; a unit named by another name of the same packaged lineage ("p-qwen25" for "qwen") is that lineage."""
    from provenance.models.packaged import canonical_lineage

    ev, d = ctx.evidence, ctx.design
    unit_of = {canonical_lineage(u): u for u in d.units}
    return {s: unit_of.get(c, c) for s in need for c in [canonical_lineage(lineage_unit(s, {s: ev[s].model.lineage}))]}


def _outside(ctx: PairContext) -> TestResult:
    name = outside_likelihood.NAME
    plan = ctx.plans.get("likelihood")
    if plan is None:
        return TestResult.skip(name, "not run: no likelihood prompts were planned")
    d = ctx.design
    if not outside_likelihood.applies(ctx.suspect_access()):  # the audited suspect's, also in a placebo
        return TestResult.skip(name, "not run: the suspect gives log-likelihoods, so the inside family "
                                     f"({capable_likelihood.NAME}) tests the same question with more power")
    if not ctx.sources:
        return TestResult.skip(name, "no comparison sources answered the likelihood prompts (the packaged models are "
                                     "not installed, or none is independent of the reference)")
    ids = [p.id for p in plan.probes]
    scorers = [d.reference, *ctx.sources]
    answerers = [d.suspect, *d.controls]

    # Only answerers whose every answer this scorer scored: a partial column is no column (left out).
    table = {s: {a: got for a in answerers if (got := scored(ctx, s, a, ids)) is not None} for s in scorers}
    return outside_likelihood.outside_test(table, d.suspect, d.reference, ctx.sources, d.units,
                                           source_units(ctx, scorers), ids)


def _identity(ctx: PairContext) -> TestResult:
    plan = ctx.plans.get("identity")
    if plan is None:
        return TestResult.skip("identity_claims", "no identity probes were planned")
    from provenance.models.packaged import markers_of

    ev = ctx.evidence
    answers = {k: e.answers[plan.probe_set.id] for k, e in ev.items() if plan.probe_set.id in e.answers}
    curated = markers_of(ev[ctx.design.reference].model.lineage)
    return identity_claims(answers, [p.id for p in plan.probes], ctx.design, curated)


def _weights(ctx: PairContext) -> TestResult:
    s, r = ctx.evidence[ctx.design.suspect], ctx.evidence[ctx.design.reference]
    return weight_permutation_test(s.weights, r.weights, s.model_type, r.model_type, ctx.rng("weight_alignment"),
                                   ctx.n_permutations)


register(TestFamily("output_agreement", _output, "behaviour", "output", "text",
                    "greedy continuations: does the suspect agree with the reference beyond its kind?",
                    references=behaviour.REFERENCES,
                    deviations="Nikolic et al. compare token-level output similarity with a baseline of unrelated "
                               "models, each model a unit; here similarity is word-prefix agreement over the first six "
                               "words (comparable across tokenizers), the statistic is an interaction (the suspect's "
                               "affinity to the reference beyond both models' general agreement), control models of "
                               "one lineage count once, and the test is a Student-t prediction test over lineages with "
                               "the exact rank p beside it"))
register(TestFamily("next_token_divergence", _next_token, "behaviour", "next_token", "top_logprobs",
                    "first-token distributions: does the suspect's match the reference's beyond its kind?",
                    references=behaviour.REFERENCES,
                    deviations="Lin's Jensen-Shannon divergence is a measure, not a provenance test; its use here on "
                               "renormalised top-20 next-token distributions keyed by decoded strings, inside output "
                               "agreement's interaction null, is this tool's"))
register(TestFamily("reference_likelihood", _likelihood, "behaviour", "likelihood", "logits",
                    "does the suspect find the reference's sampled answers unusually likely (sequence-level "
                    "distillation)?", references=likelihood.REFERENCES, versions=frozenset({2}),
                    deviations="Kim & Rush describe the training regime, not a test of it; the test (per-byte "
                               "log-likelihood of the reference's sampled answers, as an interaction against the "
                               "control lineages' answers) is this tool's, built on Nikolic et al.'s baseline of "
                               "unrelated models"))
register(TestFamily(capable_likelihood.NAME, _capable, "behaviour", "likelihood", "logits",
                    "does the suspect prefer the reference's sampled answers over other capable models' answers more "
                    "than its kind does (sequence-level distillation)?", references=capable_likelihood.REFERENCES,
                    versions=frozenset({3, 4}),
                    deviations="Kim & Rush describe the training regime, not a test of it; the test (scorer x source "
                               "tetrads of per-byte log-likelihood, the reference's sampled answers against capable "
                               "independent models' answers, control lineages in the suspect's seat) is this tool's"))
register(TestFamily(outside_likelihood.NAME, _outside, "behaviour", "likelihood", "text",
                    "for a suspect that gives text only: does the reference find the suspect's sampled answers "
                    "unusually likely, beyond what capable independent models find, more than the controls' answers "
                    "(sequence-level distillation, seen from the outside)?", references=outside_likelihood.REFERENCES,
                    versions=frozenset({4}),
                    deviations="Kim & Rush describe the training regime, not a test of it; the test (the transpose of "
                               "capable_likelihood: the reference and capable independent models score the suspect's "
                               "and the controls' sampled answers, as scorer x answerer tetrads) is this tool's, and it "
                               "runs only when the suspect gives no log-likelihoods"))
register(TestFamily("identity_claims", _identity, "corroboration", "identity", "text",
                    "does the suspect name itself as the reference does, more than its kind does? (corroboration)",
                    references=identity.REFERENCES,
                    deviations="not a test of Nikolic et al.'s; their baseline of unrelated models is applied to the "
                               "share of identity answers that name the reference's markers; corroboration only, it "
                               "never decides"))
register(TestFamily("weight_alignment", _weights, "weights", None, "weights",
                    "are the suspect's MLP units aligned with the reference's beyond every permutation?",
                    placebo=False, references=weights.REFERENCES,
                    deviations="one of Zhu et al.'s constrained-setting statistics only (the correlation of "
                               "same-index MLP up-projection units in the first, middle and last layers, 9999 random "
                               "permutations, no Fisher aggregation over every layer), and not their unconstrained test "
                               "that aligns hidden activations: a derivative whose units were permuted escapes it"))
