"""The lab base model: a small audio LLM of exactly the Qwen2-Audio architecture.

No checkpoint can be downloaded here, so the lab builds its own: a byte-level BPE tokenizer
with Qwen's special tokens and chat template, a Whisper feature extractor (128 mel bins, as
Qwen2-Audio), a `Qwen2AudioForConditionalGeneration` with a tiny config, all saved with
`save_pretrained` so the same loading code serves it and the real 7B checkpoint.
"""

from __future__ import annotations

from pathlib import Path

from core.detectors.llm.prompt import DEFAULT_PROMPT
from core.detectors.llm.qwen2_audio import SYSTEM

# torch, transformers and tokenizers are imported inside functions: importing this module stays cheap

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"]
# Qwen2-Audio-Instruct's chat template (audio slots numbered "Audio N: ").
CHAT_TEMPLATE = (
    "{% set audio_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if 'audio' in content or 'audio_url' in content or content['type'] == 'audio' %}"
    "{% set audio_count.value = audio_count.value + 1 %}Audio {{ audio_count.value }}: <|audio_bos|><|AUDIO|><|audio_eos|>\n"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

TINY = {
    "audio": {
        "d_model": 64,
        "encoder_layers": 2,
        "encoder_attention_heads": 4,
        "encoder_ffn_dim": 256,
        "num_mel_bins": 128,
        "max_source_positions": 1500,
    },
    "text": {
        "hidden_size": 64,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
    },
}


def build_tokenizer(vocab_size: int = 512):
    """Byte-level BPE over the lab's prompts, with Qwen's special tokens; left padding for scoring."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [
        SYSTEM,
        DEFAULT_PROMPT,
        "system\n",
        "user\n",
        "assistant\n",
        "Audio 1: ",
        "A",
        "B",
        "Is there speech in this clip?",
        "Answer with one letter.",
    ]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus * 8, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
        padding_side="left",
    )


def build_processor():
    from transformers import Qwen2AudioProcessor, WhisperFeatureExtractor

    fe = WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, hop_length=160, chunk_length=30, n_fft=400)
    return Qwen2AudioProcessor(feature_extractor=fe, tokenizer=build_tokenizer(), chat_template=CHAT_TEMPLATE)


def build_model(processor, sizes: dict = TINY, seed: int = 0):
    """A randomly initialised Qwen2AudioForConditionalGeneration sized by `sizes`."""
    import torch
    from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration

    tok = processor.tokenizer
    config = Qwen2AudioConfig(
        audio_config=dict(sizes["audio"]),
        text_config={"model_type": "qwen2", "vocab_size": len(tok), **sizes["text"], "tie_word_embeddings": False},
        audio_token_index=tok.convert_tokens_to_ids("<|AUDIO|>"),
    )
    torch.manual_seed(seed)
    return Qwen2AudioForConditionalGeneration(config).eval()


def save(model, processor, folder: str | Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


# the committed model's folder (its recipe and training: core/detectors/lab_base.py)
BASE_NAME = "lab-base"


def base_model_dir() -> Path:
    from core.paths import repo_root

    return repo_root() / "models" / BASE_NAME
