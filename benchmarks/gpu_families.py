"""GPU benchmark: the chat audio-LLM families at their real size, lab path vs the family's batched reference path.

Qwen2.5-Omni-7B's thinker and Audio Flamingo 3 (Whisper-large-v3 encoder + Qwen2-7B decoder),
each built from a config with random bf16 weights on the GPU (no download; the tokenizer is a
small BPE with the family's special tokens, tests/tiny_families.py; the thinker's vision tower,
unused for audio, is kept tiny). Clips of 0.2–1 s.
  lab:       `AudioLLMDetector` over the family, batched by length; features trimmed to the batch where the
             encoder allows it (Omni), 30 s windows where it does not (AF3);
  reference: the same batch through the family's processor layout: features padded to 30 s
             (AF3: `AudioFlamingo3Processor` itself, batched).
Prints clips/s of each and the ratio, and max |Δ logit| between the two in fp32 on 8 clips.
  python3 benchmarks/gpu_families.py [--clips 256] [--batch 32] [--repeats 2] [--tiny]
`--tiny` runs the tests' tiny configs on this machine (a check of the script).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.detectors.llm import FAMILIES, AudioLLMDetector, AudioLLMSpec  # noqa: E402
from core.detectors.llm.chat import ChatFamily, ChatParts  # noqa: E402

TEXT_7B = {"vocab_size": 152064, "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
           "num_attention_heads": 28, "num_key_value_heads": 4}  # fmt: skip
WHISPER_LARGE = {"num_mel_bins": 128, "encoder_layers": 32, "encoder_attention_heads": 20, "encoder_ffn_dim": 5120}


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def build(family: str, tiny: bool, folder: Path):
    """(model, parts, processor or None) of `family` at real size (random bf16 on CUDA) or the tests' tiny size."""
    from transformers import WhisperFeatureExtractor

    from tests import tiny_families as tf

    if tiny:
        path = (tf.build_qwen25_omni_thinker if family == "qwen2.5-omni" else tf.build_audio_flamingo3)(folder)
        model, parts = FAMILIES[family].load(AudioLLMSpec(family=family, model=str(path), dtype="fp32"))
        proc = None
        if family == "audio-flamingo-3":
            from transformers import AudioFlamingo3Processor

            proc = AudioFlamingo3Processor.from_pretrained(path)
        return model, parts, proc
    fe = WhisperFeatureExtractor(feature_size=128)
    torch.set_default_dtype(torch.bfloat16)
    if family == "qwen2.5-omni":
        from transformers import Qwen2_5OmniThinkerConfig, Qwen2_5OmniThinkerForConditionalGeneration

        tok = tf.bpe_tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>", *tf.OMNI_TOKENS.values()],
                               named=tf.OMNI_TOKENS, eos_token="<|im_end|>", pad_token="<|endoftext|>")  # fmt: skip
        tok.chat_template = tf.chatml("<|audio_bos|><|AUDIO|><|audio_eos|>")
        ids = {k: tok.convert_tokens_to_ids(v) for k, v in tf.OMNI_TOKENS.items()}
        config = Qwen2_5OmniThinkerConfig(
            audio_config={"d_model": 1280, **WHISPER_LARGE, "output_dim": 3584, "n_window": 100},
            vision_config={"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
                           "out_hidden_size": 3584, "fullatt_block_indexes": [0]},
            text_config={**TEXT_7B, "rope_parameters": {"rope_type": "default", "rope_theta": 1e6,
                                                        "mrope_section": [16, 24, 24]}},
            audio_token_id=ids["audio_token"], image_token_id=ids["image_token"], video_token_id=ids["video_token"],
            audio_start_token_id=ids["audio_bos_token"], audio_end_token_id=ids["audio_eos_token"],
            vision_start_token_id=ids["vision_bos_token"], vision_end_token_id=ids["vision_eos_token"],
        )  # fmt: skip
        with torch.device("cuda"):
            model = Qwen2_5OmniThinkerForConditionalGeneration(config).eval()
        proc = None
    else:
        from transformers import AudioFlamingo3Config, AudioFlamingo3ForConditionalGeneration, AudioFlamingo3Processor

        tok = tf.bpe_tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<sound>"], eos_token="<|im_end|>",
                               pad_token="<|endoftext|>",
                               additional_special_tokens=["<|im_start|>", "<|im_end|>", "<sound>"])  # fmt: skip
        tok.chat_template = tf.chatml("<sound>")
        config = AudioFlamingo3Config(
            audio_config={"hidden_size": 1280, "num_hidden_layers": 32, "num_attention_heads": 20,
                          "intermediate_size": 5120, "num_mel_bins": 128},
            text_config={"model_type": "qwen2", **TEXT_7B},
            audio_token_id=tok.convert_tokens_to_ids("<sound>"),
        )  # fmt: skip
        with torch.device("cuda"):
            model = AudioFlamingo3ForConditionalGeneration(config).eval()
        proc = AudioFlamingo3Processor(feature_extractor=fe, tokenizer=tok, chat_template=tok.chat_template)
    torch.set_default_dtype(torch.float32)
    return model, ChatParts(fe, tok), proc


def processor_scores(det: AudioLLMDetector, proc, clips: list[np.ndarray], batch: int) -> np.ndarray:
    """Audio Flamingo 3's own processor, batched: text and audio lists in, last-position answer logits out."""
    text = det.family.chat_text(det.parts, det.prompt)
    device = next(det.model.parameters()).device
    dtype = next(det.model.parameters()).dtype
    out = []
    for i in range(0, len(clips), batch):
        part = clips[i : i + batch]
        inputs = proc(text=[text] * len(part), audio=part, return_tensors="pt")
        inputs = {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device)) for k, v in inputs.items()}
        with torch.inference_mode():
            logits = det.model(**inputs).logits[:, -1]
        out.append(logits[:, list(det.ids)].float().cpu().numpy())
    return np.concatenate(out)


def timed(fn, repeats: int) -> tuple[float, np.ndarray]:
    best, result = float("inf"), None
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        result = fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--tiny", action="store_true")
    chat = [name for name, f in FAMILIES.items() if isinstance(f, ChatFamily)]  # the families this builds
    ap.add_argument("--family", nargs="*", default=chat, choices=chat)
    args = ap.parse_args()
    import tempfile

    from benchmarks.gpu_qwen2audio import clips as make_clips

    audio = make_clips(args.clips, seed=2)
    device = "cpu" if args.tiny else torch.cuda.get_device_name()
    for family in args.family:
        with tempfile.TemporaryDirectory() as tmp:
            bench_family(family, args, audio, device, Path(tmp))
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def bench_family(family: str, args: argparse.Namespace, audio: list[np.ndarray], device: str, tmp: Path) -> None:
    """Time and compare the lab path and the reference path of one family; print the figures."""
    model, parts, proc = build(family, args.tiny, tmp / family)
    spec = dict(family=family, model="", batch_size=args.batch)
    lab = AudioLLMDetector(AudioLLMSpec(**spec, padding="trimmed"), model, parts)
    ref = AudioLLMDetector(AudioLLMSpec(**spec, padding="padded"), model, parts)

    def reference(clips: list[np.ndarray], batch: int) -> np.ndarray:
        return processor_scores(lab, proc, clips, batch) if proc else ref.score(clips, 16000)

    lab.score(audio[: args.batch], 16000)  # warm-up
    reference_name = "AudioFlamingo3Processor, batched" if proc else "30 s padded features, batched"
    t_lab, s_lab = timed(lambda: lab.score(audio, 16000), args.repeats)
    t_ref, s_ref = timed(lambda: reference(audio, args.batch), args.repeats)
    n_params = sum(p.numel() for p in model.parameters()) / 1e9
    print(f"{FAMILIES[family].title} ({n_params:.2f} B parameters, {next(model.parameters()).dtype}) on "
          f"{device}, {len(audio)} clips of 0.2-1 s, batch {args.batch}, best of {args.repeats}:")  # fmt: skip
    print(f"  lab path ({'trimmed' if FAMILIES[family].trimmed else '30 s windows'}): "
          f"{len(audio) / t_lab:.1f} clips/s; reference ({reference_name}): {len(audio) / t_ref:.1f} clips/s; "
          f"ratio {t_ref / t_lab:.2f}×")  # fmt: skip
    agree = np.mean(((s_lab[:, 0] - s_lab[:, 1]) > 0) == ((s_ref[:, 0] - s_ref[:, 1]) > 0))
    print(f"  in {next(model.parameters()).dtype}: max |Δ logit| {np.abs(s_lab - s_ref).max():.3g}, "
          f"decisions agree {agree:.4f}")  # fmt: skip
    model.float()
    few = audio[:8]
    delta = np.abs(lab.score(few, 16000) - reference(few, 8)).max()
    print(f"  in fp32 on {len(few)} clips: max |Δ logit| lab vs reference {delta:.3g}")


if __name__ == "__main__":
    main()
