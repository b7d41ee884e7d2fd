"""Audio LLM detector (Qwen2-Audio family): one forward pass, the logits of two answer tokens.

The clip goes into the model's chat template with a multiple-choice question; the next-token
logits of answer "A" (speech) and "B" (non-speech) are read at the last prompt position.

Two audio paths give the same logits (a test proves it to 1e-4 in fp32):
- `padded`: the processor's own path — every clip padded to 30 s of log-mel frames;
- `trimmed` (default): features padded only to the batch's longest clip plus a margin, and
  the encoder run on that length. The encoder masks padded frames in attention, so valid
  frames see the same inputs; only convolutions near the end see padding, and the margin
  keeps their padding identical. A 1 s clip then costs ~1/30 of the encoder work.
The padded path left-pads its batches with explicit position ids; the trimmed path
right-pads and reads each clip at its own last token. Either way a clip's logits do not
depend on what else is in its batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.detectors.base import check_clip_lengths
from core.errors import LabError

DEFAULT_MODEL = "Qwen/Qwen2-Audio-7B-Instruct"
SYSTEM = "You are a helpful assistant."
DEFAULT_PROMPT = (
    "Does this audio contain human speech?\n"
    "A. Yes, it contains speech.\n"
    "B. No, it does not contain speech.\n"
    "Answer with the letter A or B."
)
# where a prompt puts the clip; without it the clip comes first, as in Qwen2-Audio's examples
AUDIO_MARK = "<audio>"
# the default question asked before the clip: the trimmed path then computes it once per batch
QUESTION_FIRST_PROMPT = DEFAULT_PROMPT + "\n" + AUDIO_MARK
HOP = 160  # Whisper feature extractor: 10 ms hop at 16 kHz
MARGIN_FRAMES = 8  # padded frames kept after the longest clip (conv receptive field is 5)


@dataclass
class AudioLLMSpec:
    """What to load and how to score; saved in each predictions sidecar."""

    model: str = DEFAULT_MODEL
    prompt: str = DEFAULT_PROMPT
    answers: tuple[str, str] = ("A", "B")
    adapter: str = ""
    dtype: str = "auto"  # auto = bf16 on CUDA, fp32 on CPU
    device: str = "auto"
    load_in_4bit: bool = False
    padding: str = "trimmed"  # or "padded" (30 s, the processor's path)
    mode: str = "logits"  # or "generate" (constrained to the two answers), for parity checks
    batch_size: int = 8
    compile: bool = False  # torch.compile each encoder and decoder layer (GPU throughput)
    workers: int = -1  # processes preparing batches ahead of the device; -1 = 4 on CUDA, none on CPU
    extra: dict[str, Any] = field(default_factory=dict)


def _torch():
    import torch

    return torch


def resolve_device_dtype(spec: AudioLLMSpec):
    torch = _torch()
    device = spec.device if spec.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if spec.dtype == "auto":
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    else:
        dtype = {
            "float32": torch.float32,
            "fp32": torch.float32,
            "bfloat16": torch.bfloat16,
            "bf16": torch.bfloat16,
            "float16": torch.float16,
            "fp16": torch.float16,
        }.get(spec.dtype)
        if dtype is None:
            raise LabError(f"unknown dtype {spec.dtype!r}: use auto, fp32, bf16 or fp16")
    return device, dtype


def _not_here(model: str) -> str:
    return (
        f"model {model!r} is neither a local directory nor in the local Hugging Face cache, and weights "
        "cannot be fetched here (no internet). On a machine with internet run "
        f"`huggingface-cli download {model} --local-dir /path/to/dir`, copy the folder here and pass "
        "the directory as the model (CLI: --model /path/to/dir)."
    )


def read_model_config(folder: Path) -> dict:
    """A model folder's config.json, or a LabError saying why the folder is not a model."""
    cfg = folder / "config.json"
    if not cfg.is_file():
        raise LabError(f"{folder}: not a model folder (no config.json); give the folder a checkpoint was saved to")
    return read_model_config_file(cfg)


def check_weight_files(folder: Path) -> None:
    """Refuse a folder whose weight files are truncated or not what their names say, naming the file.

    Reads each safetensors file's header and checks that the data it declares is all there (a
    copy cut short keeps a valid header but loses tensors), and opens .bin files' zip directory;
    no tensor is loaded. Why: a broken file otherwise surfaces as a traceback deep in loading,
    after a run or job was registered.
    """
    import json
    import struct
    import zipfile

    for f in sorted(folder.glob("*.safetensors")):
        try:
            with open(f, "rb") as fh:
                size = f.stat().st_size
                head = fh.read(8)
                if len(head) < 8:
                    raise ValueError("shorter than a safetensors header")
                (n,) = struct.unpack("<Q", head)
                if n > size - 8:
                    raise ValueError(f"header of {n} bytes in a file of {size}")
                header = json.loads(fh.read(n))
            ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
            if 8 + n + max(ends, default=0) > size:
                raise ValueError(f"{8 + n + max(ends)} bytes declared, {size} present (truncated?)")
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise LabError(f"{f}: not a readable safetensors file ({exc}); copy it again or re-save the model") from exc
    for f in sorted(folder.glob("*.bin")):
        try:
            with zipfile.ZipFile(f) as z:
                z.namelist()
        except (OSError, zipfile.BadZipFile) as exc:
            raise LabError(f"{f}: not a readable PyTorch weights file ({exc}); copy it again") from exc


def read_model_config_file(path: Path) -> dict:
    """A JSON configuration file (a model's or an adapter's), or a LabError naming it."""
    from core.atomic import read_json_object

    return read_json_object(path, "the configuration", LabError)


def require_available(model: str, model_types: tuple[str, ...] = ("qwen2_audio",)) -> None:
    """Refuse early (before a background job starts) a model that is not here or not of this family.

    A local folder must hold a config.json whose model_type is one of `model_types`; an id must
    be in the local Hugging Face cache (nothing is downloaded).
    """
    if not str(model).strip():
        raise LabError("give the model: a local folder or an id already in the Hugging Face cache")
    local = Path(model).expanduser()
    if local.exists() and not local.is_dir():
        raise LabError(f"{local}: a file; a model is a folder (with config.json and weights)")
    if local.is_dir():
        kind = read_model_config(local).get("model_type")
        if model_types and kind not in model_types:
            raise LabError(
                f"{local}: a {kind!r} model, not {' or '.join(repr(k) for k in model_types)} "
                "(the audio-LLM detector loads Qwen2-Audio checkpoints)"
            )
        check_weight_files(local)
        return
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(model, "config.json")
    except ValueError:  # not even a valid hub id (HFValidationError)
        cached = None
    if not isinstance(cached, str):
        raise LabError(_not_here(model))


def load(spec: AudioLLMSpec):
    """Load (model, processor) from a local directory or the local Hugging Face cache.

    Nothing is downloaded: an id that is not cached gets a message saying how to fetch it
    elsewhere and point the lab at the directory.
    """
    torch = _torch()
    from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

    device, dtype = resolve_device_dtype(spec)
    local = Path(spec.model).expanduser()
    source = str(local) if local.is_dir() else spec.model
    kwargs: dict[str, Any] = {"dtype": dtype}
    if spec.load_in_4bit:
        if not torch.cuda.is_available():
            raise LabError(
                "4-bit NF4 loading (QLoRA base) needs a CUDA GPU and bitsandbytes; this machine has "
                "no CUDA device. Load in fp32 on CPU instead (leave 4-bit off)."
            )
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype, bnb_4bit_use_double_quant=True
        )
        index = torch.device(device).index  # "cuda:1" under data parallelism: this process's GPU
        kwargs["device_map"] = {"": torch.cuda.current_device() if index is None else index}
    if local.is_dir():
        require_available(str(local))
    try:
        processor = AutoProcessor.from_pretrained(source, local_files_only=True)
        model = Qwen2AudioForConditionalGeneration.from_pretrained(source, local_files_only=True, **kwargs)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        if local.is_dir():
            raise LabError(f"{local}: not a loadable Qwen2-Audio model folder ({type(exc).__name__}: {exc})") from exc
        raise LabError(_not_here(spec.model)) from exc
    if not spec.load_in_4bit:
        model = model.to(device)
    model = with_adapter(model, spec.adapter)
    model.eval()
    return model, processor


def with_adapter(model, adapter: str):
    """`model` with the LoRA adapter folder `adapter` on top (unchanged when ""); a mismatch is a LabError."""
    if not adapter:
        return model
    from peft import PeftModel

    require_adapter(adapter)
    try:
        return PeftModel.from_pretrained(model, adapter)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise LabError(f"adapter {adapter!r} does not fit this model ({type(exc).__name__}: {exc})") from exc


def require_adapter(adapter: str) -> None:
    """Refuse early a LoRA adapter path that is not a saved peft adapter folder."""
    folder = Path(adapter).expanduser()
    if not folder.exists():
        raise LabError(f"adapter {adapter!r}: folder not found")
    if not folder.is_dir():
        raise LabError(f"adapter {adapter!r}: a file; an adapter is a folder saved by peft (adapter_config.json)")
    if not (folder / "adapter_config.json").is_file():
        raise LabError(
            f"adapter {adapter!r}: no adapter_config.json; give a folder saved by peft, e.g. a run's "
            "results/runs/<id>/adapter"
        )
    read_model_config_file(folder / "adapter_config.json")
    check_weight_files(folder)


def answer_token_ids(tokenizer, answers: tuple[str, str]) -> tuple[int, int]:
    """Token ids of the two answers; each must be exactly one token."""
    ids = []
    for a in answers:
        toks = tokenizer.encode(a, add_special_tokens=False)
        if len(toks) != 1:
            raise LabError(f"answer {a!r} is {len(toks)} tokens {toks} for this tokenizer; choose single-token answers")
        ids.append(toks[0])
    if ids[0] == ids[1]:
        raise LabError(f"answers {answers} map to the same token")
    return ids[0], ids[1]


def check_prompt(prompt: str) -> None:
    """Refuse a prompt with more than one place for the clip (the model gets one clip)."""
    if prompt.count(AUDIO_MARK) > 1:
        raise LabError(f"the prompt has one audio slot, but {AUDIO_MARK!r} appears {prompt.count(AUDIO_MARK)} times")


def chat_text(processor, prompt: str) -> str:
    """The model's chat template with one audio slot and the question, ready for the answer.

    The clip comes before the prompt's text, or where the prompt writes `<audio>`. Text before
    the clip is the same for every clip, so the trimmed path computes it once per batch: a
    question asked before the clip costs nothing per clip, one asked after it is most of the
    decoder's work for a short clip (its tokens attend to the audio).
    """
    check_prompt(prompt)
    before, _, after = prompt.partition(AUDIO_MARK) if AUDIO_MARK in prompt else ("", "", prompt)
    content = [{"type": "text", "text": before}] if before else []
    content.append({"type": "audio", "audio_url": "clip"})
    content += [{"type": "text", "text": after}] if after else []
    conversation = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}]
    return processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)


def audio_token_count(n_frames: int) -> int:
    """Audio tokens for `n_frames` valid mel frames (conv stride 2, then average pool 2)."""
    return (((n_frames - 1) // 2 + 1) - 2) // 2 + 1


def shortest_heard(processor) -> float:
    """Seconds of the shortest clip that gives the encoder at least one audio token (Qwen2-Audio:
    321 samples, just over 20 ms), found with the processor's own feature extractor."""
    lo, hi = 1, 16000
    while lo < hi:  # the token count never falls as a clip grows: bisect on it
        mid = (lo + hi) // 2
        n = int(trimmed_features(processor.feature_extractor, [np.full(mid, 0.01, np.float32)])["attention_mask"].sum())
        lo, hi = (mid + 1, hi) if audio_token_count(n) < 1 else (lo, mid)
    return lo / 16000


def window_seconds(processor) -> float:
    """The audio encoder's fixed window in seconds (Qwen2-Audio: 30), from its feature extractor."""
    return processor.feature_extractor.n_samples / 16000


def trimmed_features(feature_extractor, clips: Sequence[np.ndarray]) -> dict:
    """Log-mel features padded to the batch's longest clip plus a margin (not to 30 s), with their mask."""
    longest = max(len(c) for c in clips)
    need = -(-longest // HOP)
    n_frames = need + MARGIN_FRAMES
    if need <= feature_extractor.nb_max_frames:  # the margin never takes a clip that fits past the 30 s window
        n_frames = min(n_frames, feature_extractor.nb_max_frames)
    n_frames += (-n_frames) % 4  # two stride-2 stages
    return feature_extractor(
        list(clips),
        sampling_rate=16000,
        padding="max_length",
        max_length=n_frames * HOP,
        truncation=True,
        return_attention_mask=True,
        return_tensors="pt",
    )


def prepare(processor, clips: list[np.ndarray], prompt: str, padded: bool, answers: list[str] | None = None) -> dict:
    """Model inputs for a batch: token ids, mel features and masks.

    `answers` (trimmed path, training): each clip's answer text is appended after the prompt,
    so the answer token is the last real token of its row.
    """
    text = chat_text(processor, prompt)
    if answers is not None and (padded or len(answers) != len(clips)):
        raise ValueError("answers go with the trimmed path, one per clip")
    if padded:  # left padding asked for here: a checkpoint's tokenizer may declare right or nothing
        batch = processor(
            text=[text] * len(clips),
            audio=list(clips),
            sampling_rate=16000,
            return_tensors="pt",
            padding=True,
            padding_side="left",
        )
    else:
        feats = trimmed_features(processor.feature_extractor, clips)
        lengths = feats["attention_mask"].sum(-1).tolist()
        audio_token = processor.audio_token
        texts = [text.replace(audio_token, audio_token * audio_token_count(int(n)), 1) for n in lengths]
        if answers is not None:
            texts = [t + a for t, a in zip(texts, answers)]
        # right padding: positions need no correction and attention needs no padding mask
        tok = processor.tokenizer(texts, return_tensors="pt", padding=True, padding_side="right")
        return {
            "input_ids": tok["input_ids"],
            "attention_mask": tok["attention_mask"],
            "input_features": feats["input_features"],
            "feature_attention_mask": feats["attention_mask"],
        }
    mask = batch["attention_mask"]
    if not bool((mask[:, -1] == 1).all()):
        raise LabError("the tokenizer must pad on the left for last-position scoring")
    batch["position_ids"] = (mask.long().cumsum(-1) - 1).clamp(min=0)
    return dict(batch)


def _base(model):
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def decode(lm, cache=None, **kw):
    """Run the language model `lm` on top of `cache` (None: from scratch); returns its output.

    transformers renamed `past_key_values` to `cache` in 5.x (the old name is deprecated there);
    requirements allow both generations, so the keyword is chosen by the model's signature.
    """
    import inspect

    if cache is not None:
        name = "cache" if "cache" in inspect.signature(lm.forward).parameters else "past_key_values"
        kw[name] = cache
    return lm(**kw)


def output_cache(out):
    """The key/value cache of a decoder output, under either generation's attribute name."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def encode_trimmed(model, input_features, feature_attention_mask):
    """The audio encoder and projector on trimmed features: (per-clip audio embeddings, host lengths).

    Lengths are computed on the host from the (host) feature mask, so nothing here waits for
    the GPU: the caller can queue the whole batch and prepare the next one meanwhile.
    """
    torch = _torch()
    from transformers.masking_utils import create_bidirectional_mask

    core = _base(model).model
    tower = core.audio_tower
    device = tower.conv1.weight.device
    x = input_features.to(dtype=tower.conv1.weight.dtype, device=device, non_blocking=True)
    x = torch.nn.functional.gelu(tower.conv1(x))
    x = torch.nn.functional.gelu(tower.conv2(x)).permute(0, 2, 1)
    n = x.shape[1]
    x = x + tower.embed_positions.weight[:n]
    feat_len, out_len = tower._get_feat_extract_output_lengths(feature_attention_mask.sum(-1).cpu())
    valid = (torch.arange(n)[None, :] < feat_len[:, None]).long().to(device, non_blocking=True)
    # no "skip the mask if nothing is padded" test: it would read the mask back from the GPU
    mask = create_bidirectional_mask(
        config=tower.config, inputs_embeds=x[..., :1], attention_mask=valid, allow_is_bidirectional_skip=False
    )
    for layer in tower.layers:
        x = layer(x, mask)
    x = tower.avg_pooler(x.permute(0, 2, 1)).permute(0, 2, 1)
    x = tower.layer_norm(x)
    return core.multi_modal_projector(x), out_len


def trimmed_states(model, batch: dict, shared_prefix: bool = False):
    """Final hidden states (batch, tokens, hidden) of the trimmed path.

    The sequences are right-padded and run with a plain causal mask, so no padding mask is
    built (fast fused attention); causal attention means padding after a clip's last token
    cannot change any state up to it.

    `shared_prefix`: every row starts with the same chat-template tokens up to the audio slot
    (about a quarter of the sequence); their keys and values are computed once and shared by
    the batch. Causal attention makes this exact: those states never see the audio.
    """
    torch = _torch()
    base = _base(model)
    device = base.lm_head.weight.device
    host_ids = batch["input_ids"].cpu()
    # every index is worked out on the host, so no step waits for the GPU (no boolean-mask
    # indexing, no `.item()`): a batch is queued whole and the next one prepared meanwhile
    audio, lengths = encode_trimmed(model, batch["input_features"], batch["feature_attention_mask"])
    slots = host_ids == base.config.audio_token_id
    if int(slots.sum()) != int(lengths.sum()):
        raise LabError(f"audio tokens ({int(slots.sum())}) and audio features ({int(lengths.sum())}) do not match")
    feat_rows, feat_cols = (torch.arange(int(lengths.max()))[None, :] < lengths[:, None]).nonzero(as_tuple=True)
    slot_rows, slot_cols = slots.nonzero(as_tuple=True)
    ids = host_ids.to(device, non_blocking=True)
    embeds = base.get_input_embeddings()(ids)
    values = audio[feat_rows.to(device, non_blocking=True), feat_cols.to(device, non_blocking=True)]
    embeds = embeds.index_put(
        (slot_rows.to(device, non_blocking=True), slot_cols.to(device, non_blocking=True)), values.to(embeds.dtype)
    )
    p = int(slots[0].long().argmax())  # the first audio slot
    same_prefix = bool((host_ids[:, :p] == host_ids[:1, :p]).all())
    if not shared_prefix or p == 0 or not same_prefix or ids.shape[0] == 1:
        return base.model(inputs_embeds=embeds, use_cache=False).last_hidden_state
    head = decode(base.model, inputs_embeds=embeds[:1, :p], use_cache=True)
    cache = output_cache(head)
    cache.batch_repeat_interleave(ids.shape[0])
    positions = torch.arange(p, ids.shape[1], device=device)[None].expand(ids.shape[0], -1)
    tail = decode(
        base.model, cache, inputs_embeds=embeds[:, p:], position_ids=positions, use_cache=True
    ).last_hidden_state
    return torch.cat([head.last_hidden_state.expand(ids.shape[0], -1, -1), tail], dim=1)


def last_hidden(model, batch: dict, padded: bool):
    """Final hidden state at the last prompt position, for every clip in the batch."""
    torch = _torch()
    base = _base(model)
    device = base.lm_head.weight.device
    if padded:
        attn = batch["attention_mask"].to(device)
        out = base.model(
            input_ids=batch["input_ids"].to(device),
            input_features=batch["input_features"],
            attention_mask=attn,
            feature_attention_mask=batch["feature_attention_mask"],
            position_ids=batch["position_ids"].to(device),
        )
        return out.last_hidden_state[:, -1]
    last = (batch["attention_mask"].sum(-1) - 1).to(device, non_blocking=True)
    states = trimmed_states(model, batch, shared_prefix=True)
    return states[torch.arange(states.shape[0], device=device), last]


def answer_loss(model, batch: dict, labels, answer_mask):
    """Cross-entropy of the next-token prediction at answer tokens only (the loss masked to the answer).

    `labels` (batch, tokens) are the target ids; only positions where `answer_mask` is true
    are read, so no other label can change the loss or its gradients. The logits are those
    the scoring path reads: the last prompt position predicting the answer.
    """
    torch = _torch()
    base = _base(model)
    states = trimmed_states(model, batch)
    mask = answer_mask.to(states.device)
    rows, cols = mask[:, 1:].nonzero(as_tuple=True)  # state at t predicts token t + 1
    logits = base.lm_head(states[rows, cols]).float()
    return torch.nn.functional.cross_entropy(logits, labels.to(states.device)[rows, cols + 1])


def next_token_logits(model, batch: dict, padded: bool):
    """Full-vocabulary next-token logits at the last prompt position (float32)."""
    return _base(model).lm_head(last_hidden(model, batch, padded)).float()


def compile_layers(model) -> None:
    """Regional compilation: each transformer layer compiled once and shared by its siblings.

    Fuses the elementwise work (norms, rotary embeddings, activations) that takes about half of
    the GPU time in eager mode; shapes vary by batch, hence dynamic shapes.
    """
    import torch._dynamo

    core = _base(model).model
    layers = [*core.audio_tower.layers, *core.language_model.layers]
    # each decoder layer guards on its own slot of the shared-prefix cache: room for all of them
    cfg = torch._dynamo.config
    cfg.recompile_limit = max(cfg.recompile_limit, 4 * len(layers))
    cfg.accumulated_recompile_limit = max(cfg.accumulated_recompile_limit, 16 * len(layers))
    for layer in layers:
        layer.compile(dynamic=True)


def length_groups(lengths: list[int], batch_size: int, ramp: bool = False) -> list[np.ndarray]:
    """Clip indices in batches, shortest clips first, so each batch holds little padding.

    `ramp`: the first batches hold 1/8, 1/4 and 1/2 of `batch_size`. When worker processes
    prepare the batches, the device then starts as soon as a small batch is ready instead of
    idling while a whole one is prepared (half a second of a 12 s run on an H100), and each
    next batch is ready before the device finishes the one before.
    """
    order = np.argsort(lengths, kind="stable")
    sizes = [max(1, batch_size // d) for d in (8, 4, 2)] if ramp else []
    groups, start = [], 0
    for size in sizes:
        if start < len(order):
            groups.append(order[start : start + size])
            start += size
    return groups + [order[i : i + batch_size] for i in range(start, len(order), batch_size)]


class PreparedBatches:
    """Batches of model inputs, for worker processes to prepare ahead of the device.

    Feature extraction and tokenisation take about a third of a batch's time on a GPU host;
    in worker processes they overlap the device's work (a thread would fight the launching
    thread for the GIL). Workers keep torch's one intra-op thread: raising it in a forked
    child deadlocks OpenMP (seen here), so throughput comes from several workers instead.
    """

    def __init__(
        self, processor, clips: Sequence[np.ndarray], groups: list[np.ndarray], prompt: str | None, padded: bool
    ):
        self.processor, self.clips, self.groups, self.prompt, self.padded = processor, clips, groups, prompt, padded

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, i: int) -> dict:
        try:
            clips = [self.clips[j] for j in self.groups[i]]
            if self.prompt is None:  # features only: the prompts are put around them later (prompt_batch)
                feats = trimmed_features(self.processor.feature_extractor, clips)
                return {"input_features": feats["input_features"], "feature_attention_mask": feats["attention_mask"]}
            return prepare(self.processor, clips, self.prompt, padded=self.padded)
        except LabError as exc:  # e.g. a corrupt clip read in a worker: raised as itself, not a worker traceback
            return {"error": exc}


class AudioLLMDetector:
    """Scores clips by the two answer-token logits of a Qwen2-Audio-family model."""

    # `score` takes any sequence of clips that has their `lengths` and reads each clip only
    # when its batch is prepared (in worker processes on a GPU): core.evaluate streams a split
    # from disk through one call instead of holding its audio in memory chunk by chunk
    reads_lazily = True

    def __init__(self, spec: AudioLLMSpec | None = None, model=None, processor=None, name: str | None = None):
        from core.detectors.prompt_batch import Prompt, check_prompt_text, tokens

        self.spec = spec or AudioLLMSpec()
        check_prompt_text(Prompt(self.spec.prompt, *self.spec.answers))  # before a model is loaded
        if int(self.spec.batch_size) < 1:
            raise LabError(f"batch size must be at least 1, got {self.spec.batch_size}")
        if model is None:
            model, processor = load(self.spec)
        self.model, self.processor = model, processor
        if self.spec.compile:
            compile_layers(model)
        self.tokens = tokens(processor, Prompt(self.spec.prompt, *self.spec.answers))
        # single-token answers: their next-token logits (`ids`); longer ones: sequence log-likelihoods
        self.ids = (self.tokens.answers[0][0], self.tokens.answers[1][0]) if self.tokens.single else None
        if self.ids is None and (self.spec.padding == "padded" or self.spec.mode == "generate"):
            raise LabError(
                f"answers {tuple(self.spec.answers)} are several tokens long; they are scored by their log-likelihood "
                "on the trimmed path only (padding 'trimmed', mode 'logits')"
            )
        self.name = name or f"audio-llm:{Path(self.spec.model).name}"
        self.prompt = self.spec.prompt
        self.adapter = self.spec.adapter
        self.device = _base(model).lm_head.weight.device
        self.workers = self.spec.workers if self.spec.workers >= 0 else (4 if self.device.type == "cuda" else 0)
        self.max_seconds = window_seconds(processor)  # longer clips are refused, never cut
        self.min_seconds = shortest_heard(processor)  # shorter ones too: the encoder would give no token

    def check_lengths(self, lengths: Sequence[int]) -> None:
        """Refuse, before any work, clips longer than the encoder's window or too short to give it
        an audio token (named by position)."""
        check_clip_lengths([f"clip {i + 1}" for i in range(len(lengths))], np.asarray(lengths) / 16000,
                           self.max_seconds, f"{Path(self.spec.model).name}'s audio encoder",
                           self.min_seconds)  # fmt: skip

    def batches(self, clips: Sequence[np.ndarray], groups: list[np.ndarray], padded: bool, features_only: bool = False):
        """Prepared batches in order: by worker processes when there are several, else here.

        `features_only`: the trimmed audio features alone, for scoring several prompts on them.
        """
        dataset = PreparedBatches(self.processor, clips, groups, None if features_only else self.spec.prompt, padded)
        if self.workers == 0 or len(groups) < 2:
            return (dataset[i] for i in range(len(groups)))
        workers = min(self.workers, len(groups))
        return _torch().utils.data.DataLoader(
            dataset,
            batch_size=None,
            num_workers=workers,
            prefetch_factor=2,
            pin_memory=self.device.type == "cuda",  # page-locked inputs: truly asynchronous copies
        )

    def score(self, clips: Sequence[np.ndarray], sr: int, on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        """(n, 2) answer logits, clips batched by length (less padding).

        Nothing inside a batch waits for the device: a batch's logits are read back only after
        the next batch is queued behind it, and (on a GPU) worker processes prepare the
        following batches meanwhile, so the device goes from one batch to the next without
        waiting for the host (measured on an H100: 12 ms of gaps in a 12 s run).

        `clips` may be lazy (see `reads_lazily`); `on_batch(clips scored so far)` is called as
        results come back, for progress, and may raise to stop.
        """
        if sr != 16000:
            raise ValueError(f"Qwen2-Audio takes 16 kHz audio, got {sr} Hz")
        if self.ids is None:  # answers of several tokens: their log-likelihoods, on the shared-audio path
            from core.detectors.prompt_batch import Prompt

            return self.score_prompts(clips, sr, [Prompt(self.spec.prompt, *self.spec.answers)], on_batch)[0]
        torch = _torch()
        padded = self.spec.padding == "padded"
        bs = max(1, self.spec.batch_size)
        lengths = clips.lengths if hasattr(clips, "lengths") else [len(c) for c in clips]
        self.check_lengths(lengths)
        groups = length_groups(lengths, bs, ramp=self.workers > 0 and self.spec.mode != "generate")
        out = np.empty((len(clips), 2))
        done = 0

        def scored(idx: np.ndarray, logits) -> None:
            nonlocal done
            out[idx] = logits
            done += len(idx)
            if on_batch:
                on_batch(done)

        with torch.inference_mode():
            if self.spec.mode == "generate":
                for idx in groups:
                    scored(idx, self.generate_logits([clips[i] for i in idx]))
                return out
            pending = None  # the previous batch's logits, still on the device
            # answer ids as a device tensor made once: indexing by a Python list copies it to the
            # device on every batch, and that blocking copy waits for all queued work
            answer_ids = torch.tensor(self.ids, device=self.device)
            for idx, batch in zip(groups, self.batches(clips, groups, padded)):
                if "error" in batch:
                    raise batch["error"]
                logits = next_token_logits(self.model, batch, padded=padded).index_select(1, answer_ids)
                if pending is not None:
                    scored(pending[0], pending[1].cpu().numpy())
                pending = (idx, logits)
            if pending is not None:
                scored(pending[0], pending[1].cpu().numpy())
        return out

    def score_prompts(
        self, clips: Sequence[np.ndarray], sr: int, prompts: list, on_batch: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """(len(prompts), n, 2) answer scores of several `prompt_batch.Prompt`s on the same clips.

        Each batch's audio features and encoder output are computed once for all prompts, and the
        decoder's work up to the question once per distinct text before it (see `prompt_batch`):
        equal to scoring each prompt alone (tested in fp32). `on_batch(clips done)` as in `score`.
        """
        from core.detectors.prompt_batch import score_prompts, tokens

        if sr != 16000:
            raise ValueError(f"Qwen2-Audio takes 16 kHz audio, got {sr} Hz")
        planned = [tokens(self.processor, p) for p in prompts]  # every prompt checked before any work
        lengths = clips.lengths if hasattr(clips, "lengths") else [len(c) for c in clips]
        self.check_lengths(lengths)
        groups = length_groups(lengths, max(1, self.spec.batch_size), ramp=self.workers > 0)
        prepared = self.batches(clips, groups, padded=False, features_only=True)
        return score_prompts(self.model, prepared, groups, len(clips), planned, on_batch)

    def generate_logits(self, clips: list[np.ndarray]) -> np.ndarray:
        """The seed's path: 30 s padding and `generate()`, one new token constrained to the two answers.

        Returns the raw first-step logits of the two answers (as `logits` mode does).
        """
        batch = prepare(self.processor, clips, self.spec.prompt, padded=True)
        allowed = list(self.ids)
        gen = self.model.generate(
            input_ids=batch["input_ids"].to(self.device),
            attention_mask=batch["attention_mask"].to(self.device),
            input_features=batch["input_features"].to(self.device),
            feature_attention_mask=batch["feature_attention_mask"].to(self.device),
            max_new_tokens=1,
            do_sample=False,
            output_logits=True,
            return_dict_in_generate=True,
            prefix_allowed_tokens_fn=lambda _b, _ids: allowed,
            pad_token_id=self.processor.tokenizer.pad_token_id,
        )
        return gen.logits[0][:, allowed].float().cpu().numpy()

    def prompt_info(self, prompt) -> dict[str, Any]:
        """The sidecar facts that belong to one prompt (`prompt_batch.Prompt`) scored by this detector."""
        from core.detectors.prompt_batch import tokens

        pt = tokens(self.processor, prompt)
        return {
            "prompt": prompt.text,
            "answers": list(prompt.answers),
            "answer_token_ids": [list(a) for a in pt.answers],
            "answer_scoring": "next-token logits" if pt.single else "answer log-likelihood",
        }

    def info(self) -> dict[str, Any]:
        device, dtype = resolve_device_dtype(self.spec)
        spec = {k: v for k, v in asdict(self.spec).items() if k not in ("extra", "device", "dtype")}
        return {
            **spec,
            "model_id": self.spec.model,
            "dtype": str(dtype).replace("torch.", ""),
            "device": device,
            # single-token answers: next-token logits; longer ones: log-likelihood of the whole answer
            **self.prompt_info(self.tokens.prompt),
            "workers": self.workers,  # as resolved for this device
        }
