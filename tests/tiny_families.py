"""Tiny randomly initialised checkpoints of each detector family, built from configs (no download).

Each builder saves a folder the lab loads exactly as it would a real checkpoint: model weights,
feature extractor, tokenizer with the family's special tokens and a chat template in the
family's layout. The tokenizers are byte-level BPEs trained here on a few prompts.
"""

from __future__ import annotations

from pathlib import Path

import torch

CORPUS = [
    "Does this audio contain human speech?\nA. Yes, it contains speech.\nB. No, it does not contain speech.\n",
    "Answer with the letter A or B.",
    "system\n",
    "user\n",
    "assistant\n",
    "a sound of speech",
    "a sound of noise",
    "Yes No",
]


def bpe_tokenizer(special: list[str], named: dict[str, str] | None = None, vocab: int = 400, **kw):
    """A byte-level BPE tokenizer with `special` tokens (and `named` ones as tokenizer attributes)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=special,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS * 8, trainer)
    extra = {"extra_special_tokens": named} if named else {}
    return PreTrainedTokenizerFast(tokenizer_object=tok, padding_side="left", **extra, **kw)


def chatml(audio: str, default_system: str = "") -> str:
    """A ChatML template (the Qwen families') placing `audio` where the user turn has a clip."""
    system = (
        f"{{% if messages[0]['role'] != 'system' and '{default_system}' %}}<|im_start|>system\n{default_system}<|im_end|>\n{{% endif %}}"
        if default_system
        else ""
    )
    return (
        system + "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
        "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
        "{% for c in message['content'] %}{% if c['type'] == 'audio' %}" + audio + "{% elif c['type'] == 'text' %}"
        "{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )


def build_audio_flamingo3(folder: Path) -> Path:
    from transformers import (
        AudioFlamingo3Config,
        AudioFlamingo3ForConditionalGeneration,
        AudioFlamingo3Processor,
        WhisperFeatureExtractor,
    )

    tok = bpe_tokenizer(
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<sound>"],
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>", "<sound>"],
    )
    processor = AudioFlamingo3Processor(
        feature_extractor=WhisperFeatureExtractor(feature_size=128), tokenizer=tok, chat_template=chatml("<sound>")
    )
    config = AudioFlamingo3Config(
        audio_config={"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128,
                      "num_mel_bins": 128},
        text_config={"model_type": "qwen2", "vocab_size": len(tok), "hidden_size": 64, "intermediate_size": 128,
                     "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2},
        audio_token_id=tok.convert_tokens_to_ids("<sound>"),
    )  # fmt: skip
    torch.manual_seed(0)
    model = AudioFlamingo3ForConditionalGeneration(config).eval()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


OMNI_TOKENS = {
    "image_token": "<|IMAGE|>",
    "audio_token": "<|AUDIO|>",
    "video_token": "<|VIDEO|>",
    "vision_bos_token": "<|vision_bos|>",
    "vision_eos_token": "<|vision_eos|>",
    "audio_bos_token": "<|audio_bos|>",
    "audio_eos_token": "<|audio_eos|>",
}


def build_qwen25_omni_thinker(folder: Path) -> Path:
    from transformers import (
        Qwen2_5OmniThinkerConfig,
        Qwen2_5OmniThinkerForConditionalGeneration,
        WhisperFeatureExtractor,
    )

    tok = bpe_tokenizer(
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *OMNI_TOKENS.values()],
        named=OMNI_TOKENS,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    tok.chat_template = chatml("<|audio_bos|><|AUDIO|><|audio_eos|>")
    ids = {k: tok.convert_tokens_to_ids(v) for k, v in OMNI_TOKENS.items()}
    config = Qwen2_5OmniThinkerConfig(
        audio_config={"d_model": 64, "encoder_layers": 2, "encoder_attention_heads": 4, "encoder_ffn_dim": 128,
                      "num_mel_bins": 128, "output_dim": 64, "n_window": 100},
        vision_config={"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
                       "fullatt_block_indexes": [0]},
        text_config={"vocab_size": len(tok), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                     "num_attention_heads": 4, "num_key_value_heads": 2,
                     "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]}},
        audio_token_id=ids["audio_token"], image_token_id=ids["image_token"], video_token_id=ids["video_token"],
        audio_start_token_id=ids["audio_bos_token"], audio_end_token_id=ids["audio_eos_token"],
        vision_start_token_id=ids["vision_bos_token"], vision_end_token_id=ids["vision_eos_token"],
    )  # fmt: skip
    torch.manual_seed(0)
    model = Qwen2_5OmniThinkerForConditionalGeneration(config).eval()
    model.save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=128).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def build_whisper(folder: Path) -> Path:
    """Whisper with a tiny config; its generation config names the start and no-timestamps tokens as real ones do."""
    from transformers import GenerationConfig, WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    config = WhisperConfig(
        vocab_size=120, d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=80, max_source_positions=1500,
        max_target_positions=64, decoder_start_token_id=100, pad_token_id=110, bos_token_id=100, eos_token_id=101,
    )  # fmt: skip
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config).eval()
    # token layout of a real vocabulary, scaled down: ... <|nospeech|> = no-timestamps − 1
    model.generation_config = GenerationConfig(decoder_start_token_id=100, no_timestamps_token_id=106, eos_token_id=101)
    model.save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(folder)
    return folder


CLASSIFIER_LABELS = {0: "Speech", 1: "Music", 2: "Dog", 3: "Male speech", 4: "Vehicle"}


def build_ast(folder: Path, problem_type: str | None = None) -> Path:
    """An Audio Spectrogram Transformer classifier with AudioSet-like label names."""
    from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

    config = ASTConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, max_length=64,
        num_mel_bins=32, id2label=CLASSIFIER_LABELS, label2id={v: k for k, v in CLASSIFIER_LABELS.items()},
        problem_type=problem_type,
    )  # fmt: skip
    torch.manual_seed(0)
    model = ASTForAudioClassification(config).eval()
    model.save_pretrained(folder)
    ASTFeatureExtractor(num_mel_bins=32, max_length=64).save_pretrained(folder)
    return folder


def build_clap(folder: Path) -> Path:
    """CLAP (HTSAT audio tower, RoBERTa-style text tower) with a tiny config and a locally trained tokenizer."""
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor, RobertaTokenizerFast

    special = {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "pad_token": "<pad>",
        "unk_token": "<unk>",
        "mask_token": "<mask>",
    }
    base = bpe_tokenizer(list(special.values()), **special)
    tok = RobertaTokenizerFast(tokenizer_object=base._tokenizer, **special)
    config = ClapConfig(
        text_config={"vocab_size": len(tok), "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                     "intermediate_size": 64, "max_position_embeddings": 80, "pad_token_id": tok.pad_token_id},
        audio_config={"hidden_size": 32, "depths": [1, 1], "num_attention_heads": [2, 2], "patch_embeds_hidden_size": 16,
                      "window_size": 8, "spec_size": 256, "num_mel_bins": 64, "projection_hidden_size": 32},
        projection_dim=16,
    )  # fmt: skip
    torch.manual_seed(0)
    model = ClapModel(config).eval()
    model.save_pretrained(folder)
    ClapProcessor(feature_extractor=ClapFeatureExtractor(truncation="rand_trunc"), tokenizer=tok).save_pretrained(
        folder
    )
    return folder
