"""Make models of known lineage: tiny teachers, sequence- and logit-level distilled students, fine-tuned copies."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np


LINEAGE_FILE = ".lineage"


def _teacher_topk(teacher: Any, top_k: int, memo: dict[tuple[int, ...], tuple[Any, Any]]) -> Any:
    """The teacher's top-k logits per position of a right-padded batch, each sequence computed once (memo)."""
    torch = _torch()

    def topk(ids: Any, mask: Any) -> tuple[Any, Any]:
        keys = [tuple(row[: int(m.sum())].tolist()) for row, m in zip(ids, mask)]
        if any(k not in memo for k in keys):
            with torch.inference_mode():
                vals, idx = teacher(input_ids=ids, attention_mask=mask).logits.float().topk(top_k, dim=-1)
            for r, k in enumerate(keys):
                memo.setdefault(k, (vals[r, : len(k)].clone(), idx[r, : len(k)].clone()))
        vals = torch.zeros((*ids.shape, top_k))
        idx = torch.zeros((*ids.shape, top_k), dtype=torch.long)
        for r, k in enumerate(keys):
            vals[r, : len(k)], idx[r, : len(k)] = memo[k]
        return vals, idx

    return topk


def _torch() -> Any:
    import torch

    # PROVENANCE_TORCH_THREADS (unset: every core, as before) lets a long zoo build leave cores to others.
    torch.set_num_threads(int(os.environ.get("PROVENANCE_TORCH_THREADS") or 0) or max(1, os.cpu_count() or 1))
    return torch


def tiny_config(vocab_size: int, hidden: int = 64, layers: int = 2, init_range: float = 0.02,
                bos: int | None = None, eos: int | None = None, pad: int | None = None) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
                       num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256, tie_word_embeddings=True,
                       initializer_range=init_range, bos_token_id=bos, eos_token_id=eos, pad_token_id=pad)


def fresh_model(config: Any, seed: int) -> Any:
    torch = _torch()
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    return model


def save(model: Any, tokenizer: Any, out: Path, note: str, lineage: str | None = None) -> Path:
    """Save as an ordinary transformers directory (safetensors + tokenizer), atomically.

    `lineage` goes into a `.lineage` file (hidden, so not part of the model's fingerprint): the lineage family an
    audit then reads for this directory, so siblings count as one unit of the null without a panel file.
    """
    out = Path(out)
    tmp = out.with_name(out.name + f".{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    if lineage:
        (tmp / LINEAGE_FILE).write_text(lineage + "\n")
    (tmp / ".complete").write_text(note + "\n")
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, out)
    return out


def is_complete(path: Path) -> bool:
    return (Path(path) / ".complete").is_file() and (Path(path) / "config.json").is_file()


def sample(model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int, temperature: float, seed: int,
           batch: int = 32, progress: Any = None) -> list[list[int]]:
    """Token ids of prompt + sampled continuation, for each prompt (the teacher's outputs a student learns from)."""
    torch = _torch()
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    out: list[list[int]] = []
    gen = torch.Generator().manual_seed(seed)
    for start in range(0, len(prompts), batch):
        chunk = list(prompts[start : start + batch])
        enc = tokenizer(chunk, return_tensors="pt", padding=True).to(model.device)
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        with torch.inference_mode():
            seqs = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=True, temperature=temperature, top_k=0,
                                  top_p=1.0, pad_token_id=tokenizer.pad_token_id)
        plen = enc["input_ids"].shape[1]
        for row in range(seqs.shape[0]):
            prompt = [int(t) for t, m in zip(seqs[row, :plen].tolist(), enc["attention_mask"][row].tolist()) if m]
            cont = seqs[row, plen:].tolist()
            if tokenizer.eos_token_id in cont:  # keep the end-of-sequence token, drop the padding after it
                cont = cont[: cont.index(tokenizer.eos_token_id) + 1]
            out.append(prompt + [int(t) for t in cont])
        if progress is not None:
            progress.update(len(chunk))
    return out


def _batches(seqs: Sequence[Sequence[int]], batch: int, rng: np.random.Generator, pad: int) -> Any:
    torch = _torch()
    order = rng.permutation(len(seqs))
    for start in range(0, len(order), batch):
        chunk = [seqs[i] for i in order[start : start + batch]]
        width = max(len(s) for s in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for r, s in enumerate(chunk):
            ids[r, : len(s)] = torch.tensor(s)
            mask[r, : len(s)] = 1
        yield ids, mask


def restrict_vocab(model: Any, vocab_limit: int) -> Any:
    """Zero the (tied) embedding rows of ids >= vocab_limit, so a tiny teacher only ever emits the first ids."""
    torch = _torch()
    with torch.no_grad():
        model.get_input_embeddings().weight[vocab_limit:] = 0
    return model


def _lm_loss(student: Any, ids: Any, mask: Any, vocab_limit: int | None) -> Any:
    """Next-token cross-entropy; with `vocab_limit`, the softmax runs over the first ids only (12x cheaper on a
    49k vocabulary, which is what makes the micro zoo build in seconds)."""
    torch = _torch()
    labels = ids.masked_fill(mask == 0, -100)
    if vocab_limit is None:
        return student(input_ids=ids, attention_mask=mask, labels=labels).loss
    hidden = student.model(input_ids=ids, attention_mask=mask).last_hidden_state
    logits = hidden[:, :-1] @ student.lm_head.weight[:vocab_limit].T
    target = labels[:, 1:].masked_fill(labels[:, 1:] >= vocab_limit, -100)
    return torch.nn.functional.cross_entropy(logits.reshape(-1, vocab_limit), target.reshape(-1), ignore_index=-100)


def _fit(student: Any, seqs: Sequence[Sequence[int]], epochs: int, lr: float, seed: int, pad: int, batch: int,
         progress: Any, loss_fn: Any) -> Any:
    """The training loop both distillation regimes share: seeded shuffling, AdamW, one step per batch."""
    torch = _torch()
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=0.0)
    student.train()
    for _ in range(epochs):
        for ids, mask in _batches(seqs, batch, rng, pad):
            loss = loss_fn(ids, mask)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if progress is not None:
                progress.update(1)
    student.eval()
    return student


def train_sequence_level(student: Any, seqs: Sequence[Sequence[int]], epochs: int, lr: float, seed: int, pad: int,
                         batch: int = 16, progress: Any = None, vocab_limit: int | None = None) -> Any:
    """Sequence-level distillation (Kim & Rush 2016): next-token cross-entropy on the teacher's sampled text."""
    return _fit(student, seqs, epochs, lr, seed, pad, batch, progress,
                lambda ids, mask: _lm_loss(student, ids, mask, vocab_limit))


def train_logit_level(student: Any, teacher: Any, seqs: Sequence[Sequence[int]], epochs: int, lr: float, seed: int,
                      pad: int, top_k: int = 20, batch: int = 16, progress: Any = None,
                      vocab_limit: int | None = None) -> Any:
    """Logit-level distillation (Hinton et al. 2015): match the teacher's top-k next-token distribution at every position."""
    torch = _torch()

    # The teacher's top-k of a sequence does not change between epochs: computed with the first batch that holds the
    # sequence and reused (a full-vocabulary teacher forward is most of a step; this makes later epochs ~10x cheaper).
    memo: dict[tuple[int, ...], tuple[Any, Any]] = {}

    teacher_topk = _teacher_topk(teacher, top_k, memo)

    def loss_fn(ids: Any, mask: Any) -> Any:
        vals, idx = teacher_topk(ids, mask)
        target = torch.softmax(vals, dim=-1)  # renormalised top-k: what an API exposing top-k logprobs gives
        if vocab_limit is None:
            s_logits = student(input_ids=ids, attention_mask=mask).logits.float()
        else:  # the teacher's top-k lies inside the first ids (restrict_vocab), so this softmax suffices
            hidden = student.model(input_ids=ids, attention_mask=mask).last_hidden_state
            s_logits = hidden @ student.lm_head.weight[:vocab_limit].T
            idx = idx.clamp(max=vocab_limit - 1)
        s_logp = torch.log_softmax(s_logits, dim=-1)
        ce = -(target.clone() * s_logp.gather(-1, idx.clone())).sum(-1)
        loss = (ce * mask).sum() / mask.sum()
        return loss

    return _fit(student, seqs, epochs, lr, seed, pad, batch, progress, loss_fn)


# --- Closed-vocabulary training (the lineage study's zoo, `zoo/lineages.py`) -------------------------------------
# A model on SmolLM2's 49,152-id vocabulary that is trained on real text spends most of each step on the output
# softmax. Here the model keeps only `keep` ids (the corpus's most frequent) alive: every other embedding row is zero
# and stays zero, so its logit is exactly 0 and the full-vocabulary log-normaliser is
# logsumexp(logits[keep], log(V - |keep|)) at the cost of a |keep|-way softmax. The loss is therefore the model's true
# cross-entropy over the whole vocabulary (targets outside `keep` are skipped), and the saved model, sampled with an
# ordinary full softmax, behaves as trained: it has learned to push the 45k dead ids' mass down.


def close_vocab(model: Any, keep: Sequence[int]) -> Any:
    """Zero the (tied) embedding rows of every id outside `keep`; returns a hook handle that keeps them zero."""
    torch = _torch()
    weight = model.get_input_embeddings().weight
    dead = torch.ones(weight.shape[0], dtype=torch.bool, device=weight.device)
    dead[torch.as_tensor(list(keep), dtype=torch.long, device=weight.device)] = False
    with torch.no_grad():
        weight[dead] = 0
    return weight.register_hook(lambda g: g.masked_fill(dead[:, None], 0.0))


def _closed_parts(student: Any, keep: Sequence[int]) -> tuple[Any, Any, float]:
    torch = _torch()
    weight = student.get_input_embeddings().weight
    vocab, dev = weight.shape[0], weight.device  # on the model's device (a control may train on a GPU)
    keep_t = torch.as_tensor(list(keep), dtype=torch.long, device=dev)
    remap = torch.full((vocab,), -100, dtype=torch.long, device=dev)
    remap[keep_t] = torch.arange(len(keep_t), device=dev)
    return keep_t, remap, float(np.log(max(vocab - len(keep_t), 1)))


def closed_lm_loss(student: Any, ids: Any, mask: Any, keep_t: Any, remap: Any, log_tail: float) -> Any:
    """Full-vocabulary next-token cross-entropy of a closed-vocabulary model, computed over `keep_t` only."""
    torch = _torch()
    hidden = student.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]
    logits = hidden @ student.lm_head.weight[keep_t].T
    lse = torch.logaddexp(torch.logsumexp(logits, dim=-1), torch.tensor(log_tail, device=logits.device))
    target = remap[ids[:, 1:]].masked_fill(mask[:, 1:] == 0, -100)
    ok = target >= 0
    picked = logits.gather(-1, target.clamp_min(0)[..., None])[..., 0]
    return ((lse - picked) * ok).sum() / ok.sum().clamp_min(1)


def train_closed(student: Any, seqs: Sequence[Sequence[int]], epochs: int, lr: float, seed: int, pad: int,
                 keep: Sequence[int], batch: int = 16, progress: Any = None) -> Any:
    """Next-token training (from scratch on text, or sequence-level distillation on a teacher's samples) of a
    closed-vocabulary model; the shared `_fit` loop (seeded shuffling, AdamW, one step per batch)."""
    handle = close_vocab(student, keep)
    keep_t, remap, log_tail = _closed_parts(student, keep)
    try:
        return _fit(student, seqs, epochs, lr, seed, pad, batch, progress,
                    lambda ids, mask: closed_lm_loss(student, ids, mask, keep_t, remap, log_tail))
    finally:
        handle.remove()


def train_logit_closed(student: Any, teacher: Any, seqs: Sequence[Sequence[int]], epochs: int, lr: float, seed: int,
                       pad: int, keep: Sequence[int], top_k: int = 20, batch: int = 16, progress: Any = None) -> Any:
    """Logit-level distillation (Hinton et al. 2015) into a closed-vocabulary student: match the teacher's renormalised
    top-k next-token distribution at every position. The student's log-probability of any id (a dead id included) is
    its logit minus the full-vocabulary normaliser, so the teacher's top-k need not lie inside `keep`."""
    torch = _torch()
    handle = close_vocab(student, keep)
    keep_t, _, log_tail = _closed_parts(student, keep)
    memo: dict[tuple[int, ...], tuple[Any, Any]] = {}  # the teacher's top-k per sequence, computed once

    teacher_topk = _teacher_topk(teacher, top_k, memo)

    def loss_fn(ids: Any, mask: Any) -> Any:
        vals, idx = teacher_topk(ids, mask)
        target = torch.softmax(vals, dim=-1)
        hidden = student.model(input_ids=ids, attention_mask=mask).last_hidden_state
        weight = student.lm_head.weight
        lse = torch.logaddexp(torch.logsumexp(hidden @ weight[keep_t].T, dim=-1), torch.tensor(log_tail))
        picked = torch.einsum("bth,btkh->btk", hidden, weight[idx])
        ce = -(target * (picked - lse[..., None])).sum(-1)
        return (ce * mask).sum() / mask.sum()

    try:
        return _fit(student, seqs, epochs, lr, seed, pad, batch, progress, loss_fn)
    finally:
        handle.remove()
