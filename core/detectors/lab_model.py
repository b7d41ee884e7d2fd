"""The lab base model: a small audio LLM of exactly the Qwen2-Audio architecture.

No checkpoint can be downloaded here, so the lab builds its own: a byte-level BPE tokenizer
with Qwen's special tokens and chat template, a Whisper feature extractor (128 mel bins, as
Qwen2-Audio), a `Qwen2AudioForConditionalGeneration` with a tiny config, all saved with
`save_pretrained` so the same loading code serves it and the real 7B checkpoint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
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


# ---------------------------------------------------------------- the base model's recipe

BASE_NAME = "lab-base"
POOL_DATASET = "lab-base-pool"


def base_model_dir() -> Path:
    from core.paths import repo_root

    return repo_root() / "models" / BASE_NAME


def pool_recipe():
    """The separate pool: 8 speakers and 15 procedural sources (new seeds) never in the lab's dataset;
    clean clips of 500 and 1000 ms only, like a base model that never heard short or noisy audio."""
    from core.data.default_dataset import PROCEDURAL_GROUPS, Recipe
    from core.data.speech import POOL_VOICES

    return Recipe(
        seed=7_000_001,
        speech_groups=tuple(POOL_VOICES),
        procedural_groups=PROCEDURAL_GROUPS,
        recording_groups=(),
        speech_bases_per_group=4,
        nonspeech_bases_per_group=2,
        durations_ms=(500, 1000),
        snrs_db=(None,),
        extra={"group_prefix": "pool-"},
    )


@dataclass(frozen=True)
class BaseTraining:
    """Optimisation settings of the base model (full-parameter, answer-token loss)."""

    steps: int = 600
    batch_size: int = 16
    lr: float = 3e-4
    warmup: int = 20
    weight_decay: float = 0.01
    seed: int = 0


def train_base_model(out_dir: str | Path | None = None, training: BaseTraining | None = None, progress=None) -> Path:
    """Build the pool, train the tiny Qwen2-Audio on it, save model, processor and provenance.

    Loss: cross-entropy of the next-token logits at the answer position over the whole
    vocabulary (the loss masked to the answer token), computed on the same trimmed path the
    evaluation uses.
    """
    import time

    import numpy as np
    import torch
    from transformers import get_cosine_schedule_with_warmup

    from core import atomic
    from core.data.datasets import load_dataset
    from core.data.default_dataset import build_default
    from core.detectors.llm.prompt import answer_token_ids
    from core.detectors.llm.qwen2_audio import next_token_logits, prepare

    training = training or BaseTraining()
    out_dir = Path(out_dir or base_model_dir())
    t0 = time.perf_counter()
    build_default(POOL_DATASET, pool_recipe())
    pool = load_dataset(POOL_DATASET)
    clips = [pool.load_clip(c).samples for c in pool.manifest["clip_id"]]
    labels = (pool.manifest["label"] == "speech").to_numpy()
    torch.manual_seed(training.seed)
    rng = np.random.default_rng(training.seed)
    processor = build_processor()
    model = build_model(processor, seed=training.seed)
    model.train()
    id_a, id_b = answer_token_ids(processor.tokenizer, ("A", "B"))
    opt = torch.optim.AdamW(model.parameters(), lr=training.lr, weight_decay=training.weight_decay)
    sched = get_cosine_schedule_with_warmup(opt, training.warmup, training.steps)
    by_label = [np.flatnonzero(labels), np.flatnonzero(~labels)]
    history = []
    for step in range(training.steps):
        half = training.batch_size // 2  # class-balanced batches
        idx = np.concatenate([rng.choice(by_label[0], half), rng.choice(by_label[1], training.batch_size - half)])
        batch = prepare(processor, [clips[i] for i in idx], DEFAULT_PROMPT, padded=False)
        target = torch.tensor(np.where(labels[idx], id_a, id_b))
        logits = next_token_logits(model, batch, padded=False)
        loss = torch.nn.functional.cross_entropy(logits, target)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        history.append(float(loss))
        if progress and (step % 10 == 0 or step == training.steps - 1):
            progress((step + 1) / training.steps, f"step {step + 1}/{training.steps} loss {np.mean(history[-10:]):.3f}")
    model.eval()
    tmp = out_dir.with_name(f".{out_dir.name}.building")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    save(model, processor, tmp)
    atomic.write_csv(tmp / "training_manifest.csv", pool.manifest.drop(columns=["path"]))
    atomic.write_json(
        tmp / "lab_recipe.json",
        {
            "pool_recipe": asdict(pool_recipe()),
            "training": asdict(training),
            "sizes": TINY,
            "prompt": DEFAULT_PROMPT,
            "answers": ["A", "B"],
            "n_train_clips": len(clips),
            "final_loss_mean_last_20": float(np.mean(history[-20:])),
            "seconds": round(time.perf_counter() - t0, 1),
            "torch": torch.__version__,
        },
    )
    if out_dir.exists():
        import shutil

        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir


def ensure_base_model(progress=None) -> Path:
    """The base model's folder, training it first if it is missing."""
    folder = base_model_dir()
    if not (folder / "config.json").exists():
        train_base_model(folder, progress=progress)
    return folder
