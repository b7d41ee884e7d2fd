"""NVIDIA Audio Flamingo 3 (Whisper-style encoder, Qwen2 decoder): a chat family."""

from __future__ import annotations

from core.detectors.llm.chat import ChatFamily

AUDIO_FLAMINGO3 = ChatFamily(
    name="audio-flamingo-3",
    title="Audio Flamingo 3",
    model_types=("audioflamingo3",),
    model_class="AudioFlamingo3ForConditionalGeneration",
    feature_mask="input_features_mask",
    audio_token="<sound>",
    trimmed=False,  # its Whisper tower adds all 1500 position embeddings: 30 s windows only
)
