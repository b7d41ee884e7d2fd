"""Prompts for audio LLMs: a question, where the clip goes, and the two answers, as token ids.

The bottom of the audio-LLM package: it knows nothing of any family; a family is passed in
(`tokens` asks it for its chat text and audio placeholder), so every family shares one check of
what a prompt may be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import LabError

DEFAULT_PROMPT = (
    "Does this audio contain human speech?\n"
    "A. Yes, it contains speech.\n"
    "B. No, it does not contain speech.\n"
    "Answer with the letter A or B."
)
# where a prompt puts the clip; without it the clip comes first, as in Qwen2-Audio's examples
AUDIO_MARK = "<audio>"
# the default question asked before the clip: the trimmed path then computes it once per batch
QUESTION_FIRST_PROMPT = DEFAULT_PROMPT + "\n" + AUDIO_MARK


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


def check_prompt(prompt: str) -> None:
    """Refuse a prompt with more than one place for the clip (the model gets one clip)."""
    if prompt.count(AUDIO_MARK) > 1:
        raise LabError(f"the prompt has one audio slot, but {AUDIO_MARK!r} appears {prompt.count(AUDIO_MARK)} times")


def check_prompt_text(prompt: Prompt) -> None:
    """Refuse, before any model is loaded, what cannot be a prompt: no text, no answers, two clip slots."""
    if not prompt.text.replace(AUDIO_MARK, "").strip():
        raise LabError("the prompt is empty: write a question (the clip goes first, or where it says <audio>)")
    check_prompt(prompt.text)
    for name, answer in (("speech", prompt.speech), ("non-speech", prompt.nonspeech)):
        if not answer.strip():
            raise LabError(f"the {name} answer is empty")
    if prompt.speech.strip() == prompt.nonspeech.strip():
        raise LabError(f"the two answers are the same text ({prompt.speech!r})")


def user_content(prompt: str, audio_item: dict[str, str]) -> list[dict[str, str]]:
    """The user turn's content: text before the clip, the clip (`audio_item`), text after it.

    The clip comes before the prompt's text, or where the prompt writes `<audio>`.
    """
    check_prompt(prompt)
    before, _, after = prompt.partition(AUDIO_MARK) if AUDIO_MARK in prompt else ("", "", prompt)
    content = [{"type": "text", "text": before}] if before else []
    content.append(audio_item)
    return content + ([{"type": "text", "text": after}] if after else [])


def answer_token_ids(tokenizer, answers: tuple[str, str]) -> tuple[int, int]:
    """Token ids of the two answers on their own; each must be exactly one token."""
    ids = []
    for a in answers:
        toks = tokenizer.encode(a, add_special_tokens=False)
        if len(toks) != 1:
            raise LabError(f"answer {a!r} is {len(toks)} tokens {toks} for this tokenizer; choose single-token answers")
        ids.append(toks[0])
    if ids[0] == ids[1]:
        raise LabError(f"answers {answers} map to the same token")
    return ids[0], ids[1]


def tokens(family: Any, parts: Any, prompt: Prompt) -> PromptTokens:
    """Token ids of `prompt` in `family`'s chat template; errors name what is wrong with the prompt.

    Each answer is tokenised where it stands, after the prompt (as training appends it), so a
    tokenizer that would merge it with the prompt's last characters is caught here.
    """
    check_prompt_text(prompt)
    tok = parts.tokenizer
    text = family.chat_text(parts, prompt.text)
    ids = tok(text)["input_ids"]
    audio_id = tok.convert_tokens_to_ids(family.audio_token)
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
