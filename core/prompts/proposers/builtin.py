"""The offline proposer: deterministic, seeded edits of the best prompts so far.

For machines without an optimiser LLM (the embedded default). Each proposal takes a parent
from the top of the history (better prompts more often) and applies one or two edits:
rephrase the question from a phrase bank, move the question before or after the clip, change
the answer words (rewriting the options to match), swap "audio" for "recording" and the like,
shorten (drop a line), or lengthen (add an instruction). The same history and seed always give
the same proposals, so a search resumed after a kill continues exactly.
"""

from __future__ import annotations

import re

import numpy as np

from core.detectors.llm.prompt import Prompt
from core.prompts.candidates import Verdict
from core.prompts.proposers.base import Scored

QUESTIONS = (
    "Does this audio contain human speech?",
    "Is there speech in this clip?",
    "Is anyone speaking in this recording?",
    "Based on the audio file, is it speech or non-speech?",
    "Can you hear a human voice talking in this audio?",
    "Does the clip contain spoken words?",
    "Is this sound a person speaking?",
    "Listen to the clip: is it human speech?",
)
ANSWER_SETS = (("A", "B"), ("Yes", "No"), ("yes", "no"), ("SPEECH", "NON-SPEECH"), ("speech", "non-speech"))
INSTRUCTIONS = (
    "Listen to the whole clip before answering.",
    "Singing, music and noise without talking are not speech.",
    "Speech in background noise still counts as speech.",
    "A very short clip can still contain speech.",
    "Whispered or distant speech is still speech.",
)
WORDS = ("audio", "audio file", "recording", "clip", "sound")
QUESTION = re.compile(r"[^\n?.!]*\?")
OPTION = re.compile(r"^\s*(?:[A-Z][.)]|[\w-]{1,12}:)\s.*$")
ANSWER_LINE = re.compile(r"^\s*Answer\b.*$", re.I)
AUDIO = "<audio>"


def _lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.strip()]


def rephrase(p: Prompt, rng: np.random.Generator) -> Prompt | None:
    found = QUESTION.search(p.text)
    current = found.group(0).strip() if found else ""
    choices = [q for q in QUESTIONS if q != current]
    new = choices[int(rng.integers(len(choices)))]
    text = p.text.replace(found.group(0), new, 1) if found else f"{new}\n{p.text}"
    return Prompt(text, p.speech, p.nonspeech)


def options_for(speech: str, nonspeech: str) -> list[str]:
    if (speech, nonspeech) == ("A", "B"):
        return ["A. Yes, it contains speech.", "B. No, it does not contain speech.", "Answer with the letter A or B."]
    return [f"{speech}: it contains speech.", f"{nonspeech}: it does not.", f"Answer {speech} or {nonspeech}."]


def answers(p: Prompt, rng: np.random.Generator) -> Prompt | None:
    sets = [s for s in ANSWER_SETS if s != p.answers]
    s, n = sets[int(rng.integers(len(sets)))]
    kept = [line for line in p.text.split("\n") if not (OPTION.match(line) or ANSWER_LINE.match(line))]
    extra = options_for(s, n) if rng.random() < 0.5 else [options_for(s, n)[-1]]
    body = [line for line in kept if line.strip() and line.strip() != AUDIO]
    tail = [AUDIO] if p.text.rstrip().endswith(AUDIO) else []
    return Prompt("\n".join(body + extra + tail), s, n)


def reorder(p: Prompt, rng: np.random.Generator) -> Prompt | None:
    if AUDIO in p.text:  # back to the clip first
        return Prompt("\n".join(line for line in _lines(p.text.replace(AUDIO, "\n")) if line.strip()), *p.answers)
    return Prompt(p.text.rstrip() + "\n" + AUDIO, *p.answers)  # the question before the clip


def wording(p: Prompt, rng: np.random.Generator) -> Prompt | None:
    # a word, but not the clip's slot marker <audio>
    found = {w: re.compile(rf"(?<!<)\b{w}\b(?!>)") for w in sorted(WORDS, key=len, reverse=True)}
    present = [w for w, pattern in found.items() if pattern.search(p.text)]
    if not present:
        return None
    old = present[0]
    new = [w for w in WORDS if w != old][int(rng.integers(len(WORDS) - 1))]
    return Prompt(found[old].sub(new, p.text, count=1), *p.answers)


def shorten(p: Prompt, rng: np.random.Generator) -> Prompt | None:
    lines = p.text.split("\n")
    droppable = [i for i, line in enumerate(lines) if line.strip() and line.strip() != AUDIO and "?" not in line]
    if not droppable or len(_lines(p.text)) < 2:
        return None
    drop = droppable[int(rng.integers(len(droppable)))]
    return Prompt("\n".join(line for i, line in enumerate(lines) if i != drop), *p.answers)


def lengthen(p: Prompt, rng: np.random.Generator) -> Prompt | None:
    new = [i for i in INSTRUCTIONS if i not in p.text]
    if not new:
        return None
    line = new[int(rng.integers(len(new)))]
    lines = p.text.split("\n")
    at = next((i for i, x in enumerate(lines) if ANSWER_LINE.match(x) or x.strip() == AUDIO), len(lines))
    return Prompt("\n".join([*lines[:at], line, *lines[at:]]), *p.answers)


EDITS = {
    "rephrase": rephrase,
    "answers": answers,
    "reorder": reorder,
    "wording": wording,
    "shorten": shorten,
    "lengthen": lengthen,
}


class BuiltinProposer:
    """Seeded edits of the top prompts (no language model needed)."""

    name = "builtin"

    def __init__(self, top: int = 4) -> None:
        self.top = top

    def propose(self, meta_prompt: str, history: list[Scored], n: int, seed: int) -> list[Verdict]:
        if not history:
            return []
        best = sorted(history, key=lambda s: (-s.score, s.id))[: self.top]
        weights = np.arange(len(best), 0, -1, dtype=float)  # the best parent most often
        out = []
        for j in range(n):
            rng = np.random.default_rng([seed, j])
            parent = best[int(rng.choice(len(best), p=weights / weights.sum()))]
            prompt, done = parent.prompt, []
            for _ in range(1 + int(rng.random() < 0.5)):
                for name in rng.permutation([e for e in EDITS if e not in done]):  # the first new edit that applies
                    edited = EDITS[str(name)](prompt, rng)
                    if edited is not None and edited != prompt:
                        prompt, done = edited, [*done, str(name)]
                        break
            out.append(Verdict(prompt, "", f"builtin: {' + '.join(done)} of #{parent.id}", (parent.id,)))
        return out
