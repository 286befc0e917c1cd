"""Local transformers backend: safetensors directories, GGUF files (converted once, cached) and hub ids."""

from __future__ import annotations

import gc
import hashlib
import logging
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from provenance.errors import InputError, UnsafeCheckpointError
from provenance.fsutil import cache_dir
from provenance.models.base import Backend, Capability, Completion, Request, Score, ScoreRequest, TopToken
from provenance.models.spec import PICKLE_SUFFIXES

log = logging.getLogger(__name__)

CONVERTER_VERSION = "1"


def _quiet_transformers() -> None:
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def check_directory(path: Path, allow_unsafe_pickle: bool = False) -> None:
    """Refuse directories that would need pickle (code execution) to load, or that lack weights/config."""
    if not (path / "config.json").is_file():
        raise InputError(f"{path}: not a transformers model directory (no config.json)")
    files = [p.name for p in path.iterdir() if p.is_file()]
    has_safe = any(f.endswith(".safetensors") for f in files)
    has_pickle = any(f.endswith(PICKLE_SUFFIXES) and not f.startswith("training_args") for f in files)
    if not has_safe and not has_pickle:
        raise InputError(f"{path}: directory has no weights (*.safetensors)")
    if not has_safe and has_pickle and not allow_unsafe_pickle:
        raise UnsafeCheckpointError(
            f"{path}: weights are a pickle checkpoint, which can execute code when loaded; "
            "convert to safetensors or pass --unsafe-allow-pickle to load with weights_only"
        )
    from provenance.models.validate import validate_directory

    validate_directory(path)  # headers checked against file sizes before any loader allocates what they claim


def converted_if_ready(digest: str) -> Path | None:
    """The cached safetensors copy of the GGUF with this SHA-256, if one was completed; never builds it."""
    out = cache_dir() / "converted" / f"{digest[:24]}-v{CONVERTER_VERSION}"
    return out if (out / "config.json").is_file() and (out / ".complete").is_file() else None


def converted_gguf_dir(gguf: Path, digest: str) -> Path:
    """A safetensors copy of a GGUF model (dequantised to float32), built once and cached by content hash.

    GGUF loading in transformers de-quantises every tensor and rebuilds the tokenizer from GGUF metadata,
    which takes tens of seconds; the cached directory loads in a second or two and has identical weights.
    """
    out = cache_dir() / "converted" / f"{digest[:24]}-v{CONVERTER_VERSION}"
    if converted_if_ready(digest) is not None:
        return out
    from provenance.models.validate import validate_gguf

    validate_gguf(gguf)  # a malformed header must not reach the GGUF reader, which trusts its counts
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    _quiet_transformers()
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        quantised = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    except Exception as exc:  # corrupt or unsupported GGUF: one clear line, not a traceback
        raise InputError(f"{gguf}: cannot load GGUF ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from exc
    # A GGUF-loaded model counts as quantised; rebuild a plain one from its config to save it.
    config = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(quantised.state_dict(), strict=False)
    if unexpected or [m for m in missing if "lm_head" not in m]:
        raise InputError(f"{gguf}: GGUF tensors do not match the architecture (missing {missing[:3]}, unexpected {unexpected[:3]})")
    plain.generation_config = quantised.generation_config
    tmp = out.with_name(out.name + f".{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    plain.save_pretrained(str(tmp), safe_serialization=True)
    tok.save_pretrained(str(tmp))
    (tmp / ".complete").write_text(str(gguf) + "\n")
    try:
        os.replace(tmp, out)
    except OSError:
        if converted_if_ready(digest) is not None:
            # Another process finished the same conversion first (parallel test workers, two audits): its copy is the
            # same bytes and may be loading right now, so it is kept, never removed under its reader.
            shutil.rmtree(tmp, ignore_errors=True)
        else:  # an unfinished directory left by an older release: nobody reads it (no .complete), so replace it
            shutil.rmtree(out, ignore_errors=True)
            os.replace(tmp, out)
    del quantised, plain
    gc.collect()
    return out


def cpu_threads() -> int:
    """Intra-op threads for CPU inference: OMP_NUM_THREADS when the user set it, else the CPUs this process may use
    that no other process is running on at the moment of the call (at least 1).

    os.cpu_count() is the host's count, not the affinity mask or a container's CPU quota; more threads than usable
    cores make every parallel op wait for a descheduled thread (on 2 cores shared with one other busy process, greedy
    generation ran 6x slower with 2 threads than with 1: BENCHMARKS.md, "Collection throughput").
    """
    requested = os.environ.get("OMP_NUM_THREADS", "").strip()
    if requested.isdigit() and int(requested) > 0:
        return int(requested)
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            n = min(n, -(-int(quota) // int(period)))  # a quota of 1.5 CPUs still leaves 2 cores to run on
    except (OSError, ValueError):
        pass
    # Cores other processes are running on now are not ours: torch's threads spin while they wait, and 2 threads on 2
    # cores beside two busy processes ran 3-30x slower than 1 (BENCHMARKS.md, "Threads on a busy machine").
    return max(1, n - busy_elsewhere())


def pin_threads(n: int) -> None:
    """Use `n` intra-op threads in this process from now on, model loads included.

    Through the environment, which `cpu_threads` reads at every model load: torch.set_num_threads alone was overridden
    at the next load, so two study workers ran four spinning threads on two cores (a process beside one such worker
    ran about 40x slower than alone; BENCHMARKS.md, "Validation study").
    """
    os.environ["OMP_NUM_THREADS"] = str(n)
    import torch

    torch.set_num_threads(n)


def busy_elsewhere(samples: int = 3, gap_s: float = 0.05) -> int:
    """Threads of other processes running right now on the CPUs this process may use (state R in
    /proc/PID/task/TID/stat, on a CPU of our affinity mask), the fewest of a few readings: a momentary process (a shell
    command) should not cost an audit its threads. Only processes this one can see (a PID namespace hides the
    host's)."""
    import time  # here, like torch: the CLI's import time stays small

    me = str(os.getpid())
    try:
        ours = os.sched_getaffinity(0)
    except AttributeError:  # not Linux: assume an idle machine
        return 0
    seen = []
    for i in range(samples):
        running = 0
        try:
            pids = [e.name for e in os.scandir("/proc") if e.name.isdigit() and e.name != me]
        except OSError:
            return 0
        for pid in pids:
            try:
                tids = [e.name for e in os.scandir(f"/proc/{pid}/task")]
            except OSError:  # the process ended while we looked
                continue
            for tid in tids:
                try:
                    # "pid (comm) S ...": fields after the last ')' (comm may hold spaces); field 39 is the CPU it
                    # last ran on, the 37th after the state.
                    rest = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rpartition(")")[2].split()
                    running += rest[0] == "R" and int(rest[36]) in ours
                except (OSError, IndexError, ValueError):
                    continue
        seen.append(running)
        if i + 1 < samples:
            time.sleep(gap_s)
    return min(seen)


def tokenizer_sha256(tokenizer: Any) -> str:
    """SHA-256 of a tokenizer's vocabulary (id, token) in id order: equal exactly when token ids mean the same."""
    h = hashlib.sha256()
    for tok, idx in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1]):
        h.update(f"{idx}\t{tok}\n".encode("utf-8", "surrogatepass"))
    return h.hexdigest()


class HFBackend(Backend):
    """A causal LM loaded with transformers on the CPU (or CUDA when available), batched greedy decoding."""

    capabilities = frozenset({Capability.WEIGHTS, Capability.LOGITS, Capability.TOP_LOGPROBS, Capability.TEXT})

    def __init__(self, spec: str, path: Path, *, allow_unsafe_pickle: bool = False, batch_size: int = 16,
                 device: str | None = None, dtype: str | None = None) -> None:
        super().__init__(spec)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        _quiet_transformers()
        check_directory(path, allow_unsafe_pickle)
        torch.set_num_threads(cpu_threads())
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = dtype or ("float32" if self.device == "cpu" else "bfloat16")
        # "map": accelerate spreads the layers over every GPU and then the CPU (a model larger than one device).
        placement: dict[str, Any] = {"device_map": "auto"} if self.device == "map" else {}
        self.batch_size = batch_size
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
        except Exception as exc:
            raise InputError(f"{spec}: tokenizer missing or unreadable ({type(exc).__name__})") from exc
        try:
            self.model = AutoModelForCausalLM.from_pretrained(
                str(path),
                local_files_only=True,
                trust_remote_code=False,
                use_safetensors=not allow_unsafe_pickle,
                dtype=getattr(torch, dtype),
                **placement,
            )
            if not placement:
                self.model = self.model.to(self.device)
        except Exception as exc:
            first = (str(exc).splitlines() or [""])[0][:200]
            raise InputError(f"{spec}: cannot load weights ({type(exc).__name__}: {first})") from exc
        self.model.eval()
        if placement:  # inputs go where the first layer (the embeddings) was placed
            self.device = str(self.model.get_input_embeddings().weight.device)
        vocab_rows = self.model.get_input_embeddings().weight.shape[0]
        if len(self.tokenizer) > vocab_rows:
            raise InputError(f"{spec}: tokenizer has {len(self.tokenizer)} tokens but the model only {vocab_rows}: mismatched tokenizer")
        self.tokenizer.padding_side = "left"  # decoder-only batching pads on the left
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._tokenizer_id: str | None = None
        self._closed: ClosedVocabulary | bool | None = None  # decided on the first score() call

    @property
    def tokenizer_id(self) -> str:
        if self._tokenizer_id is None:
            self._tokenizer_id = tokenizer_sha256(self.tokenizer)
        return self._tokenizer_id

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def rendered(self, prompt: str, chat: bool) -> str | None:
        return self._render(Request(prompt, chat=True)) if chat and self.has_chat_template else None

    def decoding_details(self) -> dict[str, Any] | None:
        # generate() is called with top_p and top_k unset (no truncation: greedy, or _RowSampler over the full
        # distribution) and no stop strings; what the model's generation_config still contributes is read from it.
        gc = getattr(getattr(self, "model", None), "generation_config", None)
        eos = getattr(gc, "eos_token_id", None)
        return {"top_p": None, "top_k_truncation": None, "stop_strings": [],
                "eos_token_ids": eos if isinstance(eos, list) else ([] if eos is None else [eos]),
                "repetition_penalty": getattr(gc, "repetition_penalty", None),
                "no_repeat_ngram_size": getattr(gc, "no_repeat_ngram_size", None)}

    def _render(self, req: Request) -> str:
        if req.chat and self.has_chat_template:
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": req.prompt}], tokenize=False, add_generation_prompt=True
            )
        return req.prompt

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        import torch

        results: list[Completion | None] = [None] * len(requests)
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault((r.chat, r.max_new_tokens, r.top_k, r.temperature), []).append(i)
        for (chat, max_new, top_k, temperature), idxs in groups.items():
            texts = {i: self._render(requests[i]) for i in idxs}
            # Batching by length keeps padding (wasted compute) small. Sampled answers are batched too, each row under
            # its own seed (_RowSampler): a prompt's answer must not depend on the other prompts of its batch (nor on
            # the budget).
            idxs = sorted(idxs, key=lambda i: len(texts[i]))
            size = self.batch_size
            for start in range(0, len(idxs), size):
                batch = idxs[start : start + size]
                add_special = not (chat and self.has_chat_template)  # templates already carry BOS
                enc = self.tokenizer([texts[i] for i in batch], return_tensors="pt", padding=True,
                                     add_special_tokens=add_special).to(self.device)
                kwargs: dict[str, Any] = dict(max_new_tokens=max_new, pad_token_id=self.tokenizer.pad_token_id)
                if temperature > 0:
                    from transformers import LogitsProcessorList

                    seeds = [requests[i].seed if requests[i].seed is not None else
                             int(hashlib.sha256(texts[i].encode()).hexdigest()[:8], 16) for i in batch]
                    kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None,
                                  logits_processor=LogitsProcessorList([_RowSampler(seeds, temperature)]))
                else:
                    kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
                prompt_len = enc["input_ids"].shape[1]
                top_vals = top_ids = seq_lp = None
                with torch.inference_mode():
                    if max_new == 0:
                        # Next-token only: one forward pass, logits at the last (left-padded) position.
                        logits = self.model(**enc, logits_to_keep=1).logits[:, -1, :]
                        sequences = enc["input_ids"]
                        if top_k:
                            top_vals, top_ids = torch.log_softmax(logits.float(), dim=-1).topk(top_k)
                    else:
                        steps = _StepLogprobs(top_k)
                        hook = self.model.register_forward_hook(steps, with_kwargs=True)
                        try:
                            sequences = self.model.generate(**enc, **kwargs)
                        finally:
                            hook.remove()
                        if top_k:
                            assert steps.top is not None
                            top_vals, top_ids = steps.top
                        # Log-likelihood of what was generated, from the logits of this same pass (no second forward).
                        gen = sequences[:, prompt_len:]
                        seq_lp = (steps.token_logprobs(gen) * (gen != self.tokenizer.pad_token_id)).sum(dim=1)
                for row, i in enumerate(batch):
                    gen_ids = sequences[row, prompt_len:]
                    text = self.tokenizer.decode(gen_ids, skip_special_tokens=True)
                    n_tok = int((gen_ids != self.tokenizer.pad_token_id).sum())
                    top = None
                    if top_vals is not None and top_ids is not None:
                        top = tuple(TopToken(self.tokenizer.decode([t]), v, t)
                                    for v, t in zip(top_vals[row].tolist(), top_ids[row].tolist()))
                    results[i] = Completion(text=text, top=top, n_tokens=n_tok,
                                            logprob=None if seq_lp is None else float(seq_lp[row]))
        return [r for r in results if r is not None]

    def score(self, requests: Sequence[ScoreRequest]) -> list[Score]:
        """Sum of log-probabilities of the continuation tokens, prompt and continuation encoded separately and
        concatenated (as lm-evaluation-harness does), batched with right padding."""
        import torch

        out: list[Score | None] = [None] * len(requests)
        encoded = []
        for i, r in enumerate(requests):
            ctx = self._render(Request(r.prompt, chat=r.chat))
            add_special = not (r.chat and self.has_chat_template)
            ctx_ids = self.tokenizer(ctx, add_special_tokens=add_special)["input_ids"]
            cont_ids = self.tokenizer(r.continuation, add_special_tokens=False)["input_ids"]
            if not ctx_ids:  # the first continuation token needs a position to be predicted from
                ctx_ids = [self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None else self.tokenizer.eos_token_id]
            encoded.append((i, ctx_ids, cont_ids))
        encoded.sort(key=lambda e: len(e[1]) + len(e[2]))
        pad = self.tokenizer.pad_token_id
        head = self.model.get_output_embeddings()
        softcap = getattr(self.model.config, "final_logit_softcapping", None)
        if self._closed is None:
            self._closed = ClosedVocabulary.of(head) or False
        # Full batches: no full-sequence logits are formed (see _target_logprobs), so a batch costs activations only.
        # (Batches of 4 ran at 0.6 of a bare forward pass over batches of 16: bench/throughput.py.)
        for start in range(0, len(encoded), self.batch_size):
            chunk = encoded[start : start + self.batch_size]
            width = max(len(c) + len(k) for _, c, k in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            rows: list[int] = []
            cols: list[int] = []
            targets: list[int] = []
            for row, (_, c, k) in enumerate(chunk):
                ids[row, : len(c) + len(k)] = torch.tensor(c + k)
                mask[row, : len(c) + len(k)] = 1
                rows += [row] * len(k)
                cols += range(len(c) - 1, len(c) + len(k) - 1)  # the position that predicts each continuation token
                targets += k
            sums = [0.0] * len(chunk)
            if targets:
                with torch.inference_mode():
                    # Hidden states once (base_model: the decoder of any architecture, Llama's .model or GPT-2's
                    # .transformer), then the output layer only at the continuation's positions, all rows together.
                    hidden = self.model.base_model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).last_hidden_state
                    r_idx = torch.tensor(rows, device=hidden.device)
                    at = hidden[r_idx, torch.tensor(cols, device=hidden.device)]
                    tgt = torch.tensor(targets, device=hidden.device)
                    lp = (self._closed.target_logprobs(at, tgt, softcap) if self._closed
                          else _target_logprobs(head, at, tgt, softcap))
                    sums = torch.zeros(len(chunk), dtype=lp.dtype, device=lp.device).index_add_(0, r_idx, lp).tolist()
            for row, (i, _, k) in enumerate(chunk):
                out[i] = Score(sums[row], len(k), len(requests[i].continuation.encode("utf-8"))) if k else Score(0.0, 0, 0)
        return [o for o in out if o is not None]

    def weight_sketch(self, max_units: int = 512) -> dict[str, Any]:
        """MLP up-projections of the first, middle and last layers: the first `max_units` hidden units, float16.

        Small enough to ship in an evidence bundle so `verify` can recompute the weights test exactly.
        """
        import torch

        params = dict(self.model.named_parameters())
        names = sorted((n for n in params if n.endswith("mlp.up_proj.weight")),
                       key=lambda n: int(n.split("layers.")[1].split(".")[0]) if "layers." in n else 0)
        chosen = sorted({names[0], names[len(names) // 2], names[-1]}) if names else []
        return {
            "model_type": getattr(self.model.config, "model_type", None),
            "tensors": {n: params[n][:max_units].detach().to("cpu", dtype=torch.float16).numpy() for n in chosen},
        }

    def close(self) -> None:
        import torch

        del self.model
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _target_logprobs(head: Any, hidden: Any, targets: Any, softcap: float | None, max_logits: int = 1 << 24) -> Any:
    """log p(target) for each row of `hidden` (n x d), applying the output layer a slice of rows at a time.

    The n x vocab logits never exist at once: 16 answers of 40 tokens against Gemma's 262k vocabulary would be 670 MB,
    a third of a model; slices of at most `max_logits` floats (64 MB) cost the same matmul time.
    """
    import torch

    rows = max(1, max_logits // head.weight.shape[0])
    parts = []
    for s in range(0, hidden.shape[0], rows):
        logits = head(hidden[s : s + rows]).float()
        if softcap:  # Gemma-style soft-capping, as the model's own forward applies it
            logits = torch.tanh(logits / softcap) * softcap
        t = targets[s : s + rows].unsqueeze(-1)
        parts.append((logits.gather(-1, t) - torch.logsumexp(logits, dim=-1, keepdim=True)).squeeze(-1))
    return torch.cat(parts)


@dataclass(frozen=True)
class ClosedVocabulary:
    """An output layer most of whose rows are exactly zero (a model trained on a small slice of a large tokenizer, as
    the zoo's roots are: 4,096 live ids of 49,152), scored exactly at the cost of its live rows only.

    A zero row with no bias gives the logit 0 (and soft-capping keeps 0 at 0), so the softmax normaliser is
    logaddexp(logsumexp(live logits), log(dead rows)) and a dead target's logit is 0: the same numbers as the full
    layer up to float rounding (3e-5 nats over a text measured by bench/closed_vocab.py; tests/test_hf_scoring.py),
    about vocab/live times less work for the output layer.
    """

    weight: Any  # live rows x hidden
    position: Any  # vocab -> row of `weight`, -1 for a dead id
    log_dead: float

    # Below this share of dead rows the full layer is as cheap (one matmul either way) and nothing is gained.
    MIN_DEAD_SHARE = 0.5

    @classmethod
    def of(cls, head: Any) -> "ClosedVocabulary | None":
        import torch

        if getattr(head, "bias", None) is not None or not hasattr(head, "weight") or head.weight.dim() != 2:
            return None
        # An offloaded layer (accelerate's hooks move its weight in only for head(...); on "meta" it has no values)
        # keeps the full path, which runs those hooks.
        if head.weight.device.type == "meta" or hasattr(head, "_hf_hook"):
            return None
        w = head.weight
        with torch.inference_mode():
            # Row by row in slices: (w != 0) at once would be a vocab x hidden boolean copy (590 MB for Gemma-2).
            live = torch.cat([(w[i : i + 8192] != 0).any(dim=1) for i in range(0, w.shape[0], 8192)])
            n_dead = int((~live).sum())
            # Every row zero (a broken or hostile checkpoint): the full layer gives -log(vocab) for every token.
            if n_dead < cls.MIN_DEAD_SHARE * w.shape[0] or n_dead == w.shape[0]:
                return None
            ids = live.nonzero().squeeze(-1)
            position = torch.full((w.shape[0],), -1, dtype=torch.long, device=w.device)
            position[ids] = torch.arange(ids.numel(), device=w.device)
            return cls(w[ids].clone(), position, math.log(n_dead))

    def target_logprobs(self, hidden: Any, targets: Any, softcap: float | None) -> Any:
        import torch

        # The weight's device: under device_map="map" the last layer's output may sit elsewhere (head() moved it there).
        logits = torch.nn.functional.linear(hidden.to(self.weight.device), self.weight).float()
        targets = targets.to(self.weight.device)
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        norm = torch.logaddexp(torch.logsumexp(logits, dim=-1), torch.tensor(self.log_dead, device=logits.device))
        pos = self.position[targets]
        hit = logits.gather(-1, pos.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        return torch.where(pos >= 0, hit, torch.zeros_like(hit)) - norm


class _RowSampler:
    """Sampling at `temperature` as greedy decoding of Gumbel-perturbed scores, every row with its own generator.

    argmax(logits / T + G), with G i.i.d. standard Gumbel, is an exact draw from softmax(logits / T) (the Gumbel-max
    trick), so a whole batch is sampled in one `generate` pass while each answer depends on its own seed alone: each row
    draws one uniform per vocabulary entry per step from its generator, whatever else is in the batch. (One at a time,
    the sampled sets were most of a collection's time: one forward pass per token per answer.)
    """

    def __init__(self, seeds: Sequence[int], temperature: float) -> None:
        import torch

        self.gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.temperature = temperature
        self._u: Any = None  # batch x vocab uniforms, drawn in place (stacking fresh rows was a tenth of sampling)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if self._u is None or self._u.shape[-1] != scores.shape[-1]:
            self._u = torch.empty((len(self.gens), scores.shape[-1]), dtype=torch.float64)
        u = self._u
        for row, g in enumerate(self.gens):  # the same draws, in the same order, as torch.rand(vocab, generator=g)
            torch.rand(scores.shape[-1], generator=g, dtype=torch.float64, out=u[row])
        gumbel = -torch.log(-torch.log(u.clamp(min=1e-300, max=1.0 - 1e-16)))
        return scores.float() / self.temperature + gumbel.to(device=scores.device, dtype=torch.float32)


class _StepLogprobs:
    """Forward hook used during `generate`: first-step top-k, and the log-probability of every generated token.

    generate(output_logits=True) keeps each step's full-vocabulary logits until it returns, and stacking them for one
    log-softmax made two more copies (3 x steps x batch x vocab floats: 2 GB for 16 Gemma answers of 40 tokens, more
    than the model; bench/memory.py). Here only the latest step's log-probs are kept. The logits are the model's own
    output, before any sampling warper (temperature), exactly what output_logits returned.
    """

    def __init__(self, top_k: int) -> None:
        self.top_k = top_k
        self.top: tuple[Any, Any] | None = None  # (values, ids) at the first generated position
        self.prev: Any = None  # log-probs of the latest step, batch x vocab
        self.chosen: list[Any] = []  # one per decoding step: log-prob of the token generate picked at the step before

    def __call__(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        import torch

        logp = torch.log_softmax(output.logits[:, -1, :].float(), dim=-1)
        if self.prev is None:  # the prefill: the first generated position
            if self.top_k:
                self.top = logp.topk(self.top_k)
        else:
            # A decoding step's input is the token just picked from the previous step's distribution.
            ids = kwargs.get("input_ids")
            ids = ids if ids is not None else args[0]
            self.chosen.append(self.prev.gather(-1, ids[:, -1:]).squeeze(-1))
        self.prev = logp

    def token_logprobs(self, gen: Any) -> Any:
        """batch x n log-probs of the generated ids; the last one was never fed back, so it is read from `prev`."""
        import torch

        n = gen.shape[1]
        steps = self.chosen[:n]
        if len(steps) == n - 1:
            steps.append(self.prev.gather(-1, gen[:, n - 1 :]).squeeze(-1))
        assert len(steps) == n, f"{len(self.chosen)} decoding steps seen for {n} generated tokens"
        return torch.stack(steps, dim=1)
