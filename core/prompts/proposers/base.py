"""The one small interface every optimiser backend implements, and what it is shown.

A backend proposes `n` new candidates from the search so far. LLM backends read the OPRO
meta-prompt (`meta_prompt`: the task, then earlier prompts with their dev scores in ascending
order, then the request for a better one); the built-in editor reads the scored history
directly. Either way the loop checks every proposal (`candidates.screen`) before scoring it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from core.detectors.llm.prompt import Prompt
from core.prompts.candidates import Verdict

TASK = (
    "An audio language model hears one short audio clip (0.2 to 1 second, sometimes noisy, band-limited "
    "or reverberant) and must say whether it contains human speech. It is asked a question and answers "
    "with one of two answers: one means speech, the other means no speech."
)


@dataclass(frozen=True)
class Scored:
    """A prompt the search has scored: its history id and dev score (balanced accuracy, 0–1)."""

    id: int
    prompt: Prompt
    score: float


class Proposer(Protocol):
    name: str

    def propose(self, meta_prompt: str, history: list[Scored], n: int, seed: int) -> list[Verdict]: ...


def meta_prompt(history: list[Scored], task: str = TASK, shown: int = 20) -> str:
    """OPRO's meta-prompt: the best `shown` prompts so far, worst first, each with its score, then the ask.

    Ascending order puts the best prompts last, nearest the request, as the OPRO paper does.
    """
    best = sorted(history, key=lambda s: (s.score, -s.id))[-shown:]
    lines = [
        task,
        "",
        "Below are questions tried so far, each with the answers that mean speech and no speech, and its score "
        "(balanced accuracy on held-out clips, 0 to 100; higher is better). They are sorted from lowest to highest.",
        "",
    ]
    for s in best:
        lines += [
            f"<PROMPT>{s.prompt.text}</PROMPT>",
            f"<SPEECH>{s.prompt.speech}</SPEECH> <NONSPEECH>{s.prompt.nonspeech}</NONSPEECH>",
            f"score: {100 * s.score:.1f}",
            "",
        ]
    lines += [
        "Write a new question that is different from all of the questions above and scores higher than all of "
        "them. Keep it short and general. Write <audio> where the clip should be heard if it is not first.",
        "Reply in exactly this form: <PROMPT>your question</PROMPT> <SPEECH>answer meaning speech</SPEECH> "
        "<NONSPEECH>answer meaning no speech</NONSPEECH>",
    ]
    return "\n".join(lines)
