"""Audio LLMs as speech detectors: one family contract, one detector, three families.

**What a family must provide** (`family.Family`; `registry.FAMILIES` lists them): `load(spec)`
→ (model with adapter, parts: tokenizer + feature extractor; 4-bit on CUDA); `chat_text` (its
chat template with one audio slot, the clip first or where the prompt writes `<audio>`);
`prepare` (clips + prompt → model inputs, trimmed or padded, an answer appended per row for
training); `next_token_logits` (where the answer is read); `answer_loss` (cross-entropy on the
answer tokens only, masked by `family.answer_mask`); `lora` (module regexes for "attention"
and "attention + MLP", decoder and audio tower); `clip_limits` (its audio window and the
shortest clip its encoder hears). Optional, by capability: a shared audio path (`features`,
`encode`, `decoder`: many prompts on one encoder pass), `generate_logits`, `compile`.

**Where the answer logits are read**: the next-token logits at each row's last real token,
i.e. the position right after the chat template's assistant prefix; answer "A" (speech) minus
answer "B" (non-speech) is the clip's log-odds. Answers of several tokens are scored by their
sequence log-likelihood (shared-audio families).

**Which test proves each fast path equals its reference** (fp32):
- trimmed features = the processor's 30 s padding (`qwen2_audio.encode_trimmed` mirrors
  transformers 5.25's encoder): `tests/test_audio_llm.py::test_batched_trimmed_equals_per_clip_padded`;
- shared chat prefix = a full pass: `tests/test_audio_llm.py::test_shared_prefix_cache_changes_nothing`;
- several prompts on one audio cache, packed = one fresh scoring per prompt:
  `tests/test_prompt_batch.py::test_several_prompts_on_shared_audio_equal_fresh_scoring`, and multi-token
  answers = separate passes: `tests/test_prompt_batch.py::test_multi_token_answers_are_whole_answer_log_likelihoods`;
- each chat family's inputs = its own processor's: `tests/test_detector_families.py::test_batched_trimmed_scores_equal_the_families_processor_path`; the real Qwen2 tokenizer:
  `tests/test_real_tokenizer.py`;
- a new family runs through the common code: `tests/test_llm_family.py`.

Modules, bottom up: `prompt` (prompts and their tokens), `features` (mel features, batching),
`cache` (the decoder cache's names), `family` (the contract and `AudioLLMSpec`), the families
(`qwen2_audio`, `chat` with `qwen25_omni` and `audio_flamingo3`), `registry`, `packing` (shared
audio scoring), `detector` (`AudioLLMDetector`). Adding a family: docs/adding-a-family.md.
"""

from core.detectors.llm.detector import AudioLLMDetector
from core.detectors.llm.family import AudioLLMSpec, Family, answer_mask
from core.detectors.llm.prompt import AUDIO_MARK, DEFAULT_PROMPT, QUESTION_FIRST_PROMPT, Prompt
from core.detectors.llm.registry import FAMILIES, family_for, family_named, register

__all__ = [
    "AUDIO_MARK",
    "DEFAULT_PROMPT",
    "FAMILIES",
    "QUESTION_FIRST_PROMPT",
    "AudioLLMDetector",
    "AudioLLMSpec",
    "Family",
    "Prompt",
    "answer_mask",
    "family_for",
    "family_named",
    "register",
]
