"""Local transformers backend: safetensors directories, GGUF files (converted once, cached) and hub ids."""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import shutil
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


def converted_gguf_dir(gguf: Path, digest: str) -> Path:
    """A safetensors copy of a GGUF model (dequantised to float32), built once and cached by content hash.

    GGUF loading in transformers de-quantises every tensor and rebuilds the tokenizer from GGUF metadata,
    which takes tens of seconds; the cached directory loads in a second or two and has identical weights.
    """
    out = cache_dir() / "converted" / f"{digest[:24]}-v{CONVERTER_VERSION}"
    if (out / "config.json").is_file() and (out / ".complete").is_file():
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
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    del quantised, plain
    gc.collect()
    return out


class HFBackend(Backend):
    """A causal LM loaded with transformers on the CPU (or CUDA when available), batched greedy decoding."""

    capabilities = frozenset({Capability.WEIGHTS, Capability.LOGITS, Capability.TOP_LOGPROBS, Capability.TEXT})

    def __init__(self, spec: str, path: Path, *, allow_unsafe_pickle: bool = False, batch_size: int = 16,
                 device: str | None = None) -> None:
        super().__init__(spec)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        _quiet_transformers()
        check_directory(path, allow_unsafe_pickle)
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
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
                dtype=torch.float32 if self.device == "cpu" else torch.bfloat16,
            ).to(self.device)
        except Exception as exc:
            first = (str(exc).splitlines() or [""])[0][:200]
            raise InputError(f"{spec}: cannot load weights ({type(exc).__name__}: {first})") from exc
        self.model.eval()
        vocab_rows = self.model.get_input_embeddings().weight.shape[0]
        if len(self.tokenizer) > vocab_rows:
            raise InputError(f"{spec}: tokenizer has {len(self.tokenizer)} tokens but the model only {vocab_rows}: mismatched tokenizer")
        self.tokenizer.padding_side = "left"  # decoder-only batching pads on the left
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._tokenizer_id: str | None = None

    @property
    def tokenizer_id(self) -> str:
        if self._tokenizer_id is None:
            vocab = sorted(self.tokenizer.get_vocab().items(), key=lambda kv: kv[1])
            h = hashlib.sha256()
            for tok, idx in vocab:
                h.update(f"{idx}\t{tok}\n".encode("utf-8", "surrogatepass"))
            self._tokenizer_id = h.hexdigest()
        return self._tokenizer_id

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

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
            # Batching by length keeps padding (wasted compute) small.
            idxs = sorted(idxs, key=lambda i: len(texts[i]))
            for start in range(0, len(idxs), self.batch_size):
                batch = idxs[start : start + self.batch_size]
                add_special = not (chat and self.has_chat_template)  # templates already carry BOS
                enc = self.tokenizer([texts[i] for i in batch], return_tensors="pt", padding=True,
                                     add_special_tokens=add_special).to(self.device)
                kwargs: dict[str, Any] = dict(max_new_tokens=max_new, pad_token_id=self.tokenizer.pad_token_id,
                                              output_logits=True, return_dict_in_generate=True)
                if temperature > 0:
                    torch.manual_seed(int(hashlib.sha256("".join(texts[i] for i in batch).encode()).hexdigest()[:8], 16))
                    kwargs.update(do_sample=True, temperature=temperature, top_k=0, top_p=1.0)
                else:
                    kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
                prompt_len = enc["input_ids"].shape[1]
                with torch.inference_mode():
                    if max_new == 0:
                        # Next-token only: one forward pass, logits at the last (left-padded) position.
                        logits = self.model(**enc, logits_to_keep=1).logits[:, -1, :]
                        sequences = enc["input_ids"]
                    else:
                        out = self.model.generate(**enc, **kwargs)
                        logits, sequences = out.logits[0], out.sequences
                first = torch.log_softmax(logits.float(), dim=-1) if top_k else None
                seq_lp = None
                if max_new > 0:
                    # Log-likelihood of what was generated, from the logits of this same pass (no second forward).
                    steps = torch.stack([torch.log_softmax(x.float(), dim=-1) for x in out.logits], dim=1)
                    gen = sequences[:, prompt_len:]
                    tok_lp = steps.gather(-1, gen.unsqueeze(-1)).squeeze(-1)
                    seq_lp = (tok_lp * (gen != self.tokenizer.pad_token_id)).sum(dim=1)
                for row, i in enumerate(batch):
                    gen_ids = sequences[row, prompt_len:]
                    text = self.tokenizer.decode(gen_ids, skip_special_tokens=True)
                    n_tok = int((gen_ids != self.tokenizer.pad_token_id).sum())
                    top = None
                    if first is not None:
                        vals, ids = first[row].topk(top_k)
                        top = tuple(
                            TopToken(self.tokenizer.decode([int(t)]), float(v), int(t)) for v, t in zip(vals, ids)
                        )
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
        step = max(1, min(self.batch_size, 4))  # full-sequence logits over a large vocabulary are big: small batches
        for start in range(0, len(encoded), step):
            chunk = encoded[start : start + step]
            width = max(len(c) + len(k) for _, c, k in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, (_, c, k) in enumerate(chunk):
                ids[row, : len(c) + len(k)] = torch.tensor(c + k)
                mask[row, : len(c) + len(k)] = 1
            with torch.inference_mode():
                # Hidden states once, then the output layer only at the continuation's positions.
                hidden = self.model.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).last_hidden_state
                head = self.model.get_output_embeddings()
                for row, (i, c, k) in enumerate(chunk):
                    if not k:
                        out[i] = Score(0.0, 0, 0)
                        continue
                    pos = torch.arange(len(c) - 1, len(c) + len(k) - 1, device=hidden.device)
                    logits = head(hidden[row, pos]).float()
                    scale = getattr(self.model.config, "final_logit_softcapping", None)
                    if scale:  # Gemma-style soft-capping, as the model's own forward applies it
                        logits = torch.tanh(logits / scale) * scale
                    logp = torch.log_softmax(logits, -1)
                    lp = logp.gather(-1, torch.tensor(k, device=logp.device).unsqueeze(-1)).sum()
                    out[i] = Score(float(lp), len(k), len(requests[i].continuation.encode("utf-8")))
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
