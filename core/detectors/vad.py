"""Zero-shot VAD baselines turned into clip-level log-odds.

Silero VAD (weights ship in the `silero-vad` wheel): per-32 ms chunk speech probabilities,
aggregated by `top_fraction_mean` (mean of the top 20% chunks).
WebRTC VAD: binary decisions per 30 ms frame at aggressiveness 0–3; the clip probability
is the speech-frame fraction, averaged over the four modes and smoothed ((k + 0.5)/(n + 1)),
so a clip's score is graded rather than 0/1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.detectors.base import probability_logits, top_fraction_mean

# torch, silero_vad and webrtcvad are imported inside functions: importing this module stays cheap

SR = 16_000


class SileroVAD:
    name = "silero-vad"
    prompt = ""
    adapter = ""
    chunk = 512  # samples per probability at 16 kHz

    def __init__(self) -> None:
        import torch

        threads = torch.get_num_threads()
        from silero_vad import load_silero_vad  # its import sets torch threads to 1: undo that

        torch.set_num_threads(threads)
        self.model = load_silero_vad()
        self._torch = torch

    def frame_probs(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        """Chunk probabilities per clip, batched (zero padding after a clip cannot change its chunks)."""
        torch = self._torch
        n = max(self.chunk, *(len(c) for c in clips))  # a clip under 32 ms is zero-padded to one chunk
        batch = np.zeros((len(clips), n), np.float32)
        for i, c in enumerate(clips):
            batch[i, : len(c)] = c
        with torch.inference_mode():
            self.model.reset_states()
            probs = self.model.audio_forward(torch.from_numpy(batch), SR).numpy()
        return [probs[i, : max(1, len(c) // self.chunk)] for i, c in enumerate(clips)]

    def frame_curve(self, x: np.ndarray, sr: int, on_batch=None, block: int = 1875) -> tuple[np.ndarray, float]:
        """One probability per 32 ms chunk of a long recording, the state carried throughout.

        The same loop as silero_vad's own `get_speech_timestamps` (each chunk through the model in
        turn, the last zero-padded), with a progress call every `block` chunks (60 s)."""
        if sr != SR:
            raise ValueError(f"Silero VAD scores 16 kHz audio, got {sr} Hz")
        torch = self._torch
        n = -(-len(x) // self.chunk)
        padded = np.zeros(n * self.chunk, np.float32)
        padded[: len(x)] = x
        wav = torch.from_numpy(padded)
        outs = []
        with torch.inference_mode():
            self.model.reset_states()
            for i in range(n):
                outs.append(self.model(wav[i * self.chunk : (i + 1) * self.chunk], SR))
                if on_batch and (i + 1) % block == 0:
                    on_batch((i + 1) / n)
        if on_batch:
            on_batch(1.0)
        return torch.cat(outs).reshape(-1).numpy().astype(np.float64), self.chunk / SR

    def score(self, clips: list[np.ndarray], sr: int) -> np.ndarray:
        if sr != SR:
            raise ValueError(f"Silero VAD scores 16 kHz audio, got {sr} Hz")
        p = [top_fraction_mean(fp) for fp in self.frame_probs(clips)]
        return probability_logits(np.array(p))

    def info(self) -> dict[str, Any]:
        return {
            "model_id": "silero-vad (packaged JIT)",
            "dtype": "float32",
            "device": "cpu",
            "aggregation": "mean of top 20% chunk probabilities",
        }


class WebRTCVAD:
    name = "webrtc-vad"
    prompt = ""
    adapter = ""
    frame_ms = 30

    def __init__(self) -> None:
        import webrtcvad

        self.vads = [webrtcvad.Vad(mode) for mode in range(4)]

    def frame_curve(self, x: np.ndarray, sr: int, on_batch=None, block: int = 2000) -> tuple[np.ndarray, float]:
        """One value per 30 ms frame of a long recording: the share of modes 0–3 calling it speech
        (0, ¼, ½, ¾ or 1; the last partial frame zero-padded)."""
        if sr != SR:
            raise ValueError(f"WebRTC VAD is used at 16 kHz here, got {sr} Hz")
        n = SR * self.frame_ms // 1000
        pcm = np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)
        pcm = np.pad(pcm, (0, -len(pcm) % n))
        frames = len(pcm) // n
        out = np.empty(frames)
        for i in range(frames):
            f = pcm[i * n : (i + 1) * n].tobytes()
            out[i] = sum(v.is_speech(f, SR) for v in self.vads) / 4
            if on_batch and (i + 1) % block == 0:
                on_batch((i + 1) / frames)
        if on_batch:
            on_batch(1.0)
        return out, self.frame_ms / 1000

    def score(self, clips: list[np.ndarray], sr: int) -> np.ndarray:
        if sr != SR:
            raise ValueError(f"WebRTC VAD is used at 16 kHz here, got {sr} Hz")
        n = SR * self.frame_ms // 1000
        out = []
        for clip in clips:
            pcm = np.clip(np.round(clip * 32767), -32768, 32767).astype(np.int16)
            frames = [pcm[i : i + n].tobytes() for i in range(0, len(pcm) - n + 1, n)]
            if not frames:  # shorter than one frame: pad it to one
                frames = [np.pad(pcm, (0, n - len(pcm))).tobytes()]
            fracs = [(sum(v.is_speech(f, SR) for f in frames) + 0.5) / (len(frames) + 1) for v in self.vads]
            out.append(float(np.mean(fracs)))
        return probability_logits(np.array(out))

    def info(self) -> dict[str, Any]:
        return {
            "model_id": "webrtcvad (GMM, modes 0-3)",
            "dtype": "int16",
            "device": "cpu",
            "aggregation": "speech-frame fraction, mean over modes 0-3, (k+0.5)/(n+1)",
        }
