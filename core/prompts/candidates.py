"""Candidate prompts: parsing an optimiser's reply, and the checks that turn a proposal away with a reason.

A candidate is a `Prompt` (question text, optional `<audio>` slot, the answers for speech and
non-speech). Proposals come from an optimiser LLM (free text, often malformed) or from the
built-in editor; each is checked here, and a refusal says why, so the history shows what the
optimiser tried and what it got wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.detectors.llm.prompt import Prompt, check_prompt_text
from core.errors import LabError

MAX_CHARS = 1000  # a question longer than this is rambling, not a prompt
SPECIAL = re.compile(r"<\|[^|>]{1,40}\|>")  # chat-template control tokens such as <|im_start|>
TAG = {name: re.compile(rf"<{name}>(.*?)</{name}>", re.S | re.I) for name in ("PROMPT", "SPEECH", "NONSPEECH")}


@dataclass(frozen=True)
class Verdict:
    """A proposal and whether it may be scored: `reason` is empty when it may."""

    prompt: Prompt | None
    reason: str = ""
    raw: str = ""  # the optimiser's reply, or the edits the built-in proposer made
    parents: tuple[int, ...] = ()  # history ids of the prompts it was made from (or shown)

    @property
    def ok(self) -> bool:
        return self.prompt is not None and not self.reason


def key(prompt: Prompt) -> tuple[str, str, str]:
    """What makes two prompts the same: the text with runs of whitespace collapsed, and the answers."""
    squash = " ".join(prompt.text.split())
    return (squash, prompt.speech.strip(), prompt.nonspeech.strip())


def parse_reply(reply: str, default_answers: tuple[str, str] = ("A", "B"), parents: tuple[int, ...] = ()) -> Verdict:
    """A `Prompt` from an optimiser's reply: <PROMPT>…</PROMPT>, optionally <SPEECH>…</SPEECH><NONSPEECH>…</NONSPEECH>."""
    found = TAG["PROMPT"].search(reply)
    if not found:
        shown = " ".join(reply.split())[:80]
        return Verdict(None, f"no <PROMPT>…</PROMPT> in the optimiser's reply ({shown!r})", reply, parents)
    speech, nonspeech = TAG["SPEECH"].search(reply), TAG["NONSPEECH"].search(reply)
    if bool(speech) != bool(nonspeech):
        return Verdict(None, "gave only one of <SPEECH> and <NONSPEECH>", reply, parents)
    answers = (speech.group(1).strip(), nonspeech.group(1).strip()) if speech else default_answers
    return Verdict(Prompt(found.group(1).strip(), *answers), "", reply, parents)


def check(prompt: Prompt, seen: dict[tuple[str, str, str], str], detector=None) -> str:
    """The reason `prompt` cannot be scored ("" when it can).

    `seen` maps the key of every prompt already scored or accepted to where it was (e.g.
    "iteration 1, #3"); `detector` (optional, an audio-LLM detector) also checks that the answers
    tokenise apart in its model's chat template.
    """
    if len(prompt.text) > MAX_CHARS:
        return f"too long ({len(prompt.text)} characters; at most {MAX_CHARS})"
    special = SPECIAL.search(prompt.text + prompt.speech + prompt.nonspeech)
    if special:
        return f"contains the chat template's control token {special.group(0)!r}"
    try:
        check_prompt_text(prompt)
    except LabError as exc:
        return str(exc)
    if not re.search(r"[^\W\d_]", prompt.text.replace("<audio>", "")):
        return "the question has no words"
    where = seen.get(key(prompt))
    if where:
        return f"duplicate of {where}"
    if detector is not None:
        try:
            detector.prompt_tokens(prompt)
        except LabError as exc:
            return str(exc)
    return ""


def screen(proposals: list[Verdict], seen: dict[tuple[str, str, str], str], label: str, detector=None) -> list[Verdict]:
    """Each proposal checked in order; an accepted one is added to `seen` (so a repeat in one batch is caught)."""
    out = []
    for i, v in enumerate(proposals):
        reason = v.reason or check(v.prompt, seen, detector)
        if not reason:
            seen[key(v.prompt)] = f"{label} #{i + 1}"
        out.append(Verdict(v.prompt, reason, v.raw, v.parents))
    return out
