"""Qwen2.5-Omni's thinker (text out; the talker is not used): a chat family."""

from __future__ import annotations

from typing import Any

from core.detectors.llm.chat import ChatFamily, model_type_of

# transformers is imported inside functions: importing this module stays cheap


class OmniThinker(ChatFamily):
    def load_model(self, folder: str, kwargs: dict[str, Any]):
        """The thinker; from a whole Omni checkpoint (thinker + talker) the thinker is kept."""
        if model_type_of(folder) == "qwen2_5_omni":
            import transformers

            whole = transformers.Qwen2_5OmniForConditionalGeneration.from_pretrained(
                folder, local_files_only=True, **kwargs
            )
            return whole.thinker
        return super().load_model(folder, kwargs)


QWEN25_OMNI = OmniThinker(
    name="qwen2.5-omni",
    title="Qwen2.5-Omni (thinker)",
    model_types=("qwen2_5_omni_thinker", "qwen2_5_omni"),
    model_class="Qwen2_5OmniThinkerForConditionalGeneration",
    feature_mask="feature_attention_mask",
    audio_token="<|AUDIO|>",
    trimmed=True,
    system=(
        "You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving "
        "auditory and visual inputs, as well as generating text and speech."
    ),
)
