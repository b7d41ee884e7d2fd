"""Offline speech synthesis through eSpeak NG (the library shipped by `espeakng-loader`).

Why ctypes and not the `espeak-ng` command: the PyPI package ships only the shared library
and its voice data, so nothing has to be installed by hand and no text ever reaches a shell.
eSpeak NG keeps global state, so every call holds one process-wide lock.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass

import numpy as np

# espeakng_loader is imported inside functions: importing this module stays cheap

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE, _PARAM_PITCH, _PARAM_RANGE = 1, 3, 4
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

_lock = threading.Lock()
_state: dict[str, object] = {}


class TTSError(RuntimeError):
    """eSpeak NG could not be loaded or refused a voice or text."""


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: an eSpeak NG voice, a variant and prosody settings."""

    language: str
    variant: str = ""
    pitch: int = 50
    rate: int = 160
    pitch_range: int = 50

    @property
    def name(self) -> str:
        return f"{self.language}+{self.variant}" if self.variant else self.language


def _engine() -> tuple[ctypes.CDLL, int]:
    """Load and initialise the library once per process; return it and its sample rate."""
    if "lib" not in _state:
        try:
            import espeakng_loader
        except ImportError as exc:  # pragma: no cover - dependency is in requirements.txt
            raise TTSError("espeakng-loader is not installed: pip install -r requirements.txt") from exc
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        data = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
        if rate <= 0:
            raise TTSError(f"espeak_Initialize failed (returned {rate}) with data at {data!r}")
        chunks: list[np.ndarray] = []

        def on_audio(wav, n, _events) -> int:  # called synchronously inside espeak_Synth
            if n > 0 and wav:
                chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        callback = _CALLBACK(on_audio)
        lib.espeak_SetSynthCallback(callback)
        _state.update(lib=lib, rate=rate, chunks=chunks, callback=callback)
    return _state["lib"], int(_state["rate"])  # type: ignore[return-value]


def synthesize(text: str, voice: Voice, seed: int = 0) -> tuple[np.ndarray, int]:
    """Speak `text` with `voice`; return float32 mono samples in [-1, 1] and the sample rate.

    The same text, voice and seed give the same samples bit for bit.
    """
    if not text.strip():
        raise TTSError("cannot synthesise empty text")
    with _lock:
        lib, rate = _engine()
        if lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
            raise TTSError(f"eSpeak NG has no voice {voice.name!r}")
        for param, value in ((_PARAM_RATE, voice.rate), (_PARAM_PITCH, voice.pitch), (_PARAM_RANGE, voice.pitch_range)):
            lib.espeak_SetParameter(param, int(value), 0)
        lib.espeak_ng_SetRandSeed(ctypes.c_long(seed))  # aspiration noise is random
        chunks: list[np.ndarray] = _state["chunks"]  # type: ignore[assignment]
        chunks.clear()
        raw = text.encode("utf-8") + b"\0"
        err = lib.espeak_Synth(raw, len(raw), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
        if err != 0:
            raise TTSError(f"espeak_Synth failed with code {err} for voice {voice.name!r}")
        samples = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        chunks.clear()
    return samples.astype(np.float32) / 32768.0, rate
