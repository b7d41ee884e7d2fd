"""Real-model sanity: pretrained VADs and the lab base model on real and synthesised audio."""

import numpy as np
import pytest

from core.data import audio
from core.data.tts import Voice, synthesize
from core.detectors import make_detector


def p_speech(logits: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(logits[:, 0] - logits[:, 1])))


@pytest.fixture(scope="module")
def speech_and_noise():
    speech = []
    for voice in (Voice("en", "m3"), Voice("de", "f2", pitch=70), Voice("es", "m1", rate=180)):
        x, sr = synthesize("The weather is lovely today and we are going for a walk.", voice)
        speech.append(audio.peak_normalise(audio.resample(x, sr, 16000)))
    rng = np.random.default_rng(5)
    noise = [audio.peak_normalise(audio.coloured_noise(16000 * s, "white", rng)) for s in (1, 2)]
    return speech, noise


def test_silero_on_synthesised_speech_and_white_noise(speech_and_noise):
    speech, noise = speech_and_noise
    det = make_detector("silero-vad")
    assert (p_speech(det.score(speech, 16000)) > 0.5).all()
    assert (p_speech(det.score(noise, 16000)) < 0.5).all()
    batched = det.score(speech + noise, 16000)
    single = np.concatenate([det.score([c], 16000) for c in speech + noise])
    np.testing.assert_allclose(batched, single, atol=1e-6)


def test_silero_on_real_recordings(fsdd_dir):
    files = sorted((fsdd_dir / "recordings").glob("*_0.wav"))[:12]
    clips = [audio.load_audio(f).samples for f in files]
    assert (p_speech(make_detector("silero-vad").score(clips, 16000)) > 0.5).mean() >= 0.9


def test_webrtc_calls_speech_speech(speech_and_noise):
    speech, _ = speech_and_noise
    logits = make_detector("webrtc-vad").score(speech, 16000)
    assert np.isfinite(logits).all() and (p_speech(logits) > 0.5).all()


# the lab base model's accuracy is tested on real voices it never heard (tests/test_voices_dataset.py):
# since 2026-12-07 it learns real speakers, and on the synthetic set's eSpeak voices it is near chance
