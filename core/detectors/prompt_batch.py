"""Many prompts, and answers of any length, scored on the same clips with each batch's audio work done once.

A prompt is a question (the clip first, or where the text writes `<audio>`) and two answers,
for speech and for non-speech. Its chat text splits at the audio slot into tokens before the
clip (`pre`), the clip's audio tokens, and tokens after it (`post`) up to where the answer
starts. Per batch of clips:

1. the audio encoder runs once, whatever the number of prompts;
2. for each distinct `pre` (one for every prompt that puts the clip first), the decoder runs
   `pre` once (one row, shared by the batch) and then the clips' audio tokens, keeping their
   keys and values in a cache;
3. each prompt then runs only its `post` tokens on top of that cache, and the cache is cut
   back to the audio for the next prompt.

Why this is exact: attention is causal, so nothing before the question depends on it, and
the tokens after the audio see exactly what they see in one full pass: the cache's padded
audio positions (clips of one batch differ in length) are masked out, and each row's `post`
tokens take the positions they would have right after its own audio. A test checks K prompts
scored this way against K fresh scorings (`AudioLLMDetector.score`) in fp32.

Answers: when both are one token, the two next-token logits are read (today's scoring, so the
log-odds are logit_A − logit_B). When either has several tokens ("SPEECH" / "NON-SPEECH"),
each answer's score is the log-likelihood of its whole token sequence given the prompt (its
tokens run on the cache, one after another); the log-odds are then log p(A | prompt) −
log p(B | prompt), the same quantity restricted to the two answers. A test checks it against
per-token log-probabilities from separate full forward passes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from core.detectors.audio_llm import AUDIO_MARK, _base, chat_text, decode, encode_trimmed, output_cache
from core.errors import LabError


@dataclass(frozen=True)
class Prompt:
    """A question for the audio LLM and the answers that mean speech and non-speech."""

    text: str
    speech: str = "A"
    nonspeech: str = "B"

    @property
    def answers(self) -> tuple[str, str]:
        return (self.speech, self.nonspeech)


@dataclass(frozen=True)
class PromptTokens:
    """A prompt's chat-template token ids around the audio slot, and each answer's ids in context."""

    prompt: Prompt
    pre: tuple[int, ...]
    post: tuple[int, ...]
    answers: tuple[tuple[int, ...], tuple[int, ...]]

    @property
    def single(self) -> bool:
        """Both answers are one token: score by their next-token logits."""
        return all(len(a) == 1 for a in self.answers)


def check_prompt_text(prompt: Prompt) -> None:
    """Refuse, before any model is loaded, what cannot be a prompt: no text, no answers, two clip slots."""
    if not prompt.text.replace(AUDIO_MARK, "").strip():
        raise LabError("the prompt is empty: write a question (the clip goes first, or where it says <audio>)")
    if prompt.text.count(AUDIO_MARK) > 1:
        raise LabError(
            f"the prompt has one audio slot, but {AUDIO_MARK!r} appears {prompt.text.count(AUDIO_MARK)} times"
        )
    for name, answer in (("speech", prompt.speech), ("non-speech", prompt.nonspeech)):
        if not answer.strip():
            raise LabError(f"the {name} answer is empty")
    if prompt.speech.strip() == prompt.nonspeech.strip():
        raise LabError(f"the two answers are the same text ({prompt.speech!r})")


def tokens(processor, prompt: Prompt) -> PromptTokens:
    """Token ids of `prompt` for this processor; errors name what is wrong with the prompt.

    Each answer is tokenised where it stands, after the prompt (as training appends it), so a
    tokenizer that would merge it with the prompt's last characters is caught here.
    """
    check_prompt_text(prompt)
    tok = processor.tokenizer
    text = chat_text(processor, prompt.text)
    ids = tok(text)["input_ids"]
    audio_id = tok.convert_tokens_to_ids(processor.audio_token)
    if ids.count(audio_id) != 1:
        raise LabError(f"the chat template gave {ids.count(audio_id)} audio slots for this prompt; expected one")
    slot = ids.index(audio_id)
    seqs = []
    for answer in prompt.answers:
        full = tok(text + answer)["input_ids"]
        if full[: len(ids)] != ids:
            raise LabError(f"answer {answer!r} merges with the end of the prompt when tokenised; change the answer")
        seqs.append(tuple(full[len(ids) :]))
    if seqs[0] == seqs[1]:
        raise LabError(f"answers {prompt.answers} have the same token sequence {list(seqs[0])} for this tokenizer")
    if slot == 0:
        raise LabError("the chat template puts nothing before the audio; the lab needs at least one token there")
    return PromptTokens(prompt, tuple(ids[:slot]), tuple(ids[slot + 1 :]), (seqs[0], seqs[1]))


def _ids(values: Sequence[int], rows: int, device):
    import torch

    return torch.tensor(list(values), device=device)[None].expand(rows, -1)


def audio_cache(model, pre: Sequence[int], audio, lengths):
    """Decoder keys/values of `pre` (computed once, shared by every row) and each clip's audio tokens.

    Returns (cache, mask): `mask` (rows, cached positions) is 0 at the padded audio positions of
    clips shorter than the batch's longest, so later tokens never attend to them.
    """
    import torch

    base = _base(model)
    lm, embed = base.model.language_model, base.get_input_embeddings()
    device = base.lm_head.weight.device
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


def cut(cache, length: int) -> None:
    """Cut the cache back to its first `length` positions (a negative crop: the form both 4.x and 5.x take)."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)


def _continue(lm, embed, cache, mask, ids, start):
    """Run the same tokens `ids` on every row after the cache, row i from position start[i]."""
    import torch

    rows, n = mask.shape[0], len(ids)
    device = mask.device
    mask = torch.cat([mask, torch.ones(rows, n, dtype=mask.dtype, device=device)], dim=1)
    positions = (start[:, None] + torch.arange(n)[None, :]).to(device, non_blocking=True)
    embeds = embed(_ids(ids, rows, device))
    out = decode(lm, cache, inputs_embeds=embeds, attention_mask=mask, position_ids=positions, use_cache=True)
    return out.last_hidden_state, mask


def answer_scores(model, cache, mask, lengths, pt: PromptTokens):
    """(rows, 2) scores of the two answers after `pt.post`; the cache is cut back to where it was.

    Single-token answers: their next-token logits. Otherwise: each answer's log-likelihood.
    """
    import torch

    base = _base(model)
    lm, embed = base.model.language_model, base.get_input_embeddings()
    device = base.lm_head.weight.device
    kept = cache.get_seq_length()
    start = len(pt.pre) + lengths  # row i's first token after its audio
    states, mask_post = _continue(lm, embed, cache, mask, pt.post, start)
    logits = base.lm_head(states[:, -1]).float()
    if pt.single:
        out = logits[:, [pt.answers[0][0], pt.answers[1][0]]]
        cut(cache, kept)
        return out
    first = torch.log_softmax(logits, dim=-1)
    after_post = cache.get_seq_length()
    scores = []
    for seq in pt.answers:
        s = first[:, seq[0]]
        if len(seq) > 1:
            hs, _ = _continue(lm, embed, cache, mask_post, seq[:-1], start + len(pt.post))
            lp = torch.log_softmax(base.lm_head(hs).float(), dim=-1)
            nxt = torch.tensor(seq[1:], device=device)[None, :, None].expand(lp.shape[0], -1, 1)
            s = s + lp.gather(-1, nxt)[..., 0].sum(-1)
            cut(cache, after_post)
        scores.append(s)
    cut(cache, kept)
    return torch.stack(scores, dim=1)


def score_batch(model, features: dict, prompts: list[PromptTokens]):
    """(prompts, rows, 2) answer scores of one batch of clips: the encoder once, `pre` + audio once per `pre`."""
    import torch

    audio, lengths = encode_trimmed(model, features["input_features"], features["feature_attention_mask"])
    out = [None] * len(prompts)
    by_pre: dict[tuple[int, ...], list[int]] = {}
    for k, pt in enumerate(prompts):
        by_pre.setdefault(pt.pre, []).append(k)
    for pre, members in by_pre.items():
        cache, mask = audio_cache(model, pre, audio, lengths)
        for k in members:
            out[k] = answer_scores(model, cache, mask, lengths, prompts[k])
    return torch.stack(out)


def score_prompts(
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
            scores = score_batch(model, features, prompts)
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
