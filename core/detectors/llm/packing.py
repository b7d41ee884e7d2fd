"""Many prompts, and answers of any length, scored on the same clips with each batch's audio work done once.

For families with a shared audio path (`Family.shared_audio`: Qwen2-Audio). A prompt's chat text
splits at the audio slot into tokens before the clip (`pre`), the clip's audio tokens, and tokens
after it (`post`) up to where the answer starts (`prompt.tokens`). Per batch of clips:

1. the audio encoder runs once, whatever the number of prompts;
2. for each distinct `pre` (one for every prompt that puts the clip first), the decoder runs
   `pre` once (one row, shared by the batch) and then the clips' audio tokens, keeping their
   keys and values in a cache;
3. the prompts' `post` tokens (and the tokens of answers longer than one) run on top of that
   cache packed into one pass (`pack`): one large pass instead of one small pass per prompt
   and answer, with a mask that lets each token see the cache and its own prompt's earlier
   tokens only. The cache is then cut back to the audio.

Why this is exact: attention is causal, so nothing before the question depends on it, and
the tokens after the audio see exactly what they see in one full pass: the cache's padded
audio positions (clips of one batch differ in length) are masked out, another prompt's packed
tokens are masked out, and each row's tokens take the positions they would have right after
its own audio. The packed mask is an additive 4-D mask, the form transformers 5.25's decoder
layers take as given (`masking_utils._preprocess_mask_arguments` returns a 4-D mask as-is);
`tests/test_prompt_batch.py::test_several_prompts_on_shared_audio_equal_fresh_scoring` (K prompts this way
against K fresh scorings in fp32) fails if that moves.

Answers: when both are one token, the two next-token logits are read (the log-odds are
logit_A − logit_B). When either has several tokens ("SPEECH" / "NON-SPEECH"), each answer's
score is the log-likelihood of its whole token sequence given the prompt (its tokens branch from
the end of the prompt in the packed pass); the log-odds are then log p(A | prompt) −
log p(B | prompt), the same quantity restricted to the two answers
(`tests/test_prompt_batch.py::test_multi_token_answers_are_whole_answer_log_likelihoods`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.detectors.llm.cache import cut, decode, output_cache
from core.detectors.llm.prompt import PromptTokens
from core.errors import LabError

# torch is imported inside functions: importing this module stays cheap


def _ids(values: Sequence[int], rows: int, device):
    import torch

    return torch.tensor(list(values), device=device)[None].expand(rows, -1)


def audio_cache(family: Any, model, pre: Sequence[int], audio, lengths):
    """Decoder keys/values of `pre` (computed once, shared by every row) and each clip's audio tokens.

    Returns (cache, mask): `mask` (rows, cached positions) is 0 at the padded audio positions of
    clips shorter than the batch's longest, so later tokens never attend to them.
    """
    import torch

    lm, embed, head_layer = family.decoder(model)
    device = head_layer.weight.device
    rows, width = audio.shape[0], audio.shape[1]
    head = decode(lm, inputs_embeds=embed(_ids(pre, 1, device)), use_cache=True)
    cache = output_cache(head)
    cache.batch_repeat_interleave(rows)
    p = len(pre)
    valid = torch.arange(width)[None, :] < lengths[:, None]  # host: nothing waits for the device
    mask = torch.cat([torch.ones(rows, p, dtype=torch.long), valid.long()], dim=1).to(device, non_blocking=True)
    positions = (p + torch.arange(width))[None].expand(rows, -1).to(device, non_blocking=True)
    decode(
        lm,
        cache,
        inputs_embeds=audio.to(embed.weight.dtype),
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
    )
    return cache, mask


# Packed tokens per pass at most, which bounds the (rows, tokens, cache + tokens) attention. On a
# GPU one large pass beats many small ones (7B architecture on an H200, 8 prompts: 0.2–1 s clips
# 2.90 → 2.16 s, 20 s clips with the clip first 7.21 → 5.13 s). On a CPU with the lab's small model
# attention over the packed tokens outweighs the saving (0.24 → 0.36 s), so there each prompt
# (with its answers) runs in a pass of its own.
PACK_TOKENS = 512
CPU_PACK_TOKENS = 1


@dataclass(frozen=True)
class Read:
    """Where one prompt's scores come from in a packed pass."""

    last: int  # index of its last `post` token: its state predicts the first answer token
    answers: tuple[tuple[int, ...], tuple[int, ...]]
    starts: tuple[int | None, int | None]  # index of each answer's packed tokens (None: one token)
    single: bool


@dataclass(frozen=True)
class Packed:
    """Several prompts' tokens after the audio, packed into one sequence that runs in one pass.

    Each prompt contributes its `post` tokens and, for an answer of several tokens, that
    answer's tokens but the last, branching from the end of its `post` (a tree). `allowed`
    says which packed token sees which: its own segment up to itself and the whole segment it
    branches from, never another prompt's. `offsets` are positions after the row's audio, so
    every token takes the position it has in that prompt's own full pass.
    """

    ids: tuple[int, ...]
    offsets: tuple[int, ...]
    allowed: np.ndarray  # (tokens, tokens) bool
    reads: tuple[Read, ...]  # per prompt, where its scores are read


def pack(prompts: list[PromptTokens]) -> Packed:
    """The packed layout of `prompts` (see `Packed`)."""
    ids: list[int] = []
    offsets: list[int] = []
    segments: list[tuple[int, int, int | None]] = []  # (start, length, parent segment)

    def add(tokens: Sequence[int], parent: int | None, offset: int) -> int:
        segments.append((len(ids), len(tokens), parent))
        ids.extend(tokens)
        offsets.extend(range(offset, offset + len(tokens)))
        return len(segments) - 1

    reads = []
    for pt in prompts:
        if not pt.post:
            raise LabError(f"the chat template puts nothing after the audio for {pt.prompt.text!r}")
        post = add(pt.post, None, 0)
        starts: list[int | None] = [None, None]
        if not pt.single:
            for a, seq in enumerate(pt.answers):
                if len(seq) > 1:
                    starts[a] = segments[add(seq[:-1], post, len(pt.post))][0]
        reads.append(Read(segments[post][0] + len(pt.post) - 1, pt.answers, (starts[0], starts[1]), pt.single))
    n = len(ids)
    allowed = np.zeros((n, n), dtype=bool)
    for start, length, parent in segments:
        block = slice(start, start + length)
        allowed[block, block] = np.tril(np.ones((length, length), dtype=bool))
        if parent is not None:
            p_start, p_length, _ = segments[parent]
            allowed[block, p_start : p_start + p_length] = True
    return Packed(tuple(ids), tuple(offsets), allowed, tuple(reads))


def packs(prompts: list[PromptTokens], budget: int | None = None) -> list[tuple[list[int], Packed]]:
    """Prompts (by index) in packs of at most `budget` (PACK_TOKENS) tokens each; a longer prompt alone."""
    budget = PACK_TOKENS if budget is None else budget
    out: list[list[int]] = []
    size = 0
    for k, pt in enumerate(prompts):
        n = len(pt.post) + sum(len(seq) - 1 for seq in pt.answers if not pt.single)
        if not out or size + n > budget:
            out.append([])
            size = 0
        out[-1].append(k)
        size += n
    return [(members, pack([prompts[k] for k in members])) for members in out]


def packed_scores(family: Any, model, cache, mask, lengths, pre_length: int, packed: Packed) -> list:
    """(rows, 2) answer scores of each prompt in `packed`, from one pass on top of the audio cache.

    Single-token answers: their next-token logits. Otherwise: each answer's log-likelihood. The
    cache is cut back to the audio afterwards.
    """
    import torch

    lm, embed, lm_head = family.decoder(model)
    device = lm_head.weight.device
    rows, width = mask.shape
    n = len(packed.ids)
    kept = cache.get_seq_length()
    dtype = embed.weight.dtype
    # one additive mask (rows, 1, tokens, cache + tokens): the cache's real positions, then the tree
    see = torch.cat(
        [
            mask.bool()[:, None, :].expand(rows, n, width),
            torch.from_numpy(packed.allowed).to(device, non_blocking=True)[None].expand(rows, n, n),
        ],
        dim=-1,
    )
    additive = torch.zeros(see.shape, dtype=dtype, device=device).masked_fill_(~see, torch.finfo(dtype).min)[:, None]
    start = pre_length + lengths  # row i's first position after its audio
    positions = (start[:, None] + torch.tensor(packed.offsets)[None, :]).to(device, non_blocking=True)
    embeds = embed(_ids(packed.ids, rows, device))
    states = decode(lm, cache, inputs_embeds=embeds, attention_mask=additive, position_ids=positions, use_cache=True)
    states = states.last_hidden_state
    cut(cache, kept)
    out = []
    for read in packed.reads:
        logits = lm_head(states[:, read.last]).float()
        if read.single:
            out.append(logits[:, [read.answers[0][0], read.answers[1][0]]])
            continue
        first = torch.log_softmax(logits, dim=-1)
        scores = []
        for seq, at in zip(read.answers, read.starts):
            score = first[:, seq[0]]
            if at is not None:  # the answer's own tokens predict its next ones
                lp = torch.log_softmax(lm_head(states[:, at : at + len(seq) - 1]).float(), dim=-1)
                nxt = torch.tensor(seq[1:], device=device)[None, :, None].expand(rows, -1, 1)
                score = score + lp.gather(-1, nxt)[..., 0].sum(-1)
            scores.append(score)
        out.append(torch.stack(scores, dim=1))
    return out


def score_batch(family: Any, model, features: dict, prompts: list[PromptTokens]):
    """(prompts, rows, 2) answer scores of one batch of clips: the encoder once, `pre` + audio once per `pre`."""
    import torch

    audio, lengths = family.encode(model, features)
    out = [None] * len(prompts)
    by_pre: dict[tuple[int, ...], list[int]] = {}
    for k, pt in enumerate(prompts):
        by_pre.setdefault(pt.pre, []).append(k)
    for pre, members in by_pre.items():
        cache, mask = audio_cache(family, model, pre, audio, lengths)
        budget = CPU_PACK_TOKENS if audio.device.type == "cpu" else PACK_TOKENS
        for packed_members, packed in packs([prompts[k] for k in members], budget):
            scores = packed_scores(family, model, cache, mask, lengths, len(pre), packed)
            for m, score in zip(packed_members, scores):
                out[members[m]] = score
    return torch.stack(out)


def score_prompts(
    family: Any,
    model,
    prepared,
    groups: list[np.ndarray],
    n_clips: int,
    prompts: list[PromptTokens],
    on_batch: Callable[[int], None] | None = None,
) -> np.ndarray:
    """(prompts, clips, 2) scores, from `prepared` trimmed features of each group of clips, in order.

    A batch's scores are read back only after the next batch is queued (as `AudioLLMDetector.score`).
    """
    import torch

    out = np.empty((len(prompts), n_clips, 2))
    done, pending = 0, None
    with torch.inference_mode():
        for idx, features in zip(groups, prepared):
            if "error" in features:
                raise features["error"]
            scores = score_batch(family, model, features, prompts)
            if pending is not None:
                out[:, pending[0]] = pending[1].cpu().numpy()
                done += len(pending[0])
                if on_batch:
                    on_batch(done)
            pending = (idx, scores)
        if pending is not None:
            out[:, pending[0]] = pending[1].cpu().numpy()
            done += len(pending[0])
            if on_batch:
                on_batch(done)
    return out
