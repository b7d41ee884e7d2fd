"""The audio LLM's own language model as the optimiser, text only (no second model to load or fetch).

Qwen2-Audio's decoder is an instruction-tuned chat model; asked the meta-prompt without a clip,
it proposes questions in its own words. Works with the lab base model too, whose tiny decoder
only ever learned one question: its replies are mostly malformed and turned away with reasons.
"""

from __future__ import annotations

from core.prompts.candidates import Verdict, parse_reply
from core.prompts.proposers.base import Scored
from core.prompts.proposers.causal_lm import generate_replies


class AudioLLMTextProposer:
    """Samples prompts from an audio LLM's decoder, given only text."""

    name = "audio-llm-text"

    def __init__(self, model: str = "", adapter: str = "", max_new_tokens: int = 160) -> None:
        from core.detectors.lab_base import ensure_base_model
        from core.detectors.llm import AudioLLMSpec, family_for

        spec = AudioLLMSpec(model=model or str(ensure_base_model()), adapter=adapter)
        self.model, parts = family_for(spec).load(spec)
        self.tokenizer = parts.tokenizer
        self.max_new_tokens = max_new_tokens

    def propose(self, meta_prompt: str, history: list[Scored], n: int, seed: int) -> list[Verdict]:
        shown = tuple(s.id for s in history)
        replies = generate_replies(self.model, self.tokenizer, meta_prompt, n, seed, self.max_new_tokens)
        return [parse_reply(r, parents=shown) for r in replies]
