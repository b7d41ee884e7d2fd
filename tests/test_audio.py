import numpy as np
import pytest
import soundfile as sf

from core.data import audio
from core.errors import AudioError


def tone(freq: float = 440.0, sr: int = 16000, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_stereo_is_downmixed_and_said(tmp_path):
    left, right = tone(440), tone(880)
    sf.write(tmp_path / "st.wav", np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    clip = audio.load_audio(tmp_path / "st.wav")
    assert clip.notes == ["downmixed 2 channels to mono"]
    np.testing.assert_allclose(clip.samples, (left + right) / 2, atol=1e-6)


def test_other_rate_is_resampled_and_said(tmp_path):
    sf.write(tmp_path / "8k.wav", tone(1000, sr=8000), 8000)
    clip = audio.load_audio(tmp_path / "8k.wav")
    assert clip.notes == ["resampled from 8000 Hz to 16000 Hz"]
    assert clip.sr == 16000 and abs(len(clip.samples) - 16000) <= 1
    spectrum = np.abs(np.fft.rfft(clip.samples))
    assert np.argmax(spectrum) * 16000 / len(clip.samples) == pytest.approx(1000, abs=2)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_bytes(b"RIFF\x00\x00garbage" * 10), "cannot decode"),
        (lambda p: p.write_text("not audio at all"), "cannot decode"),
        (lambda p: sf.write(p, np.zeros(8000, np.float32), 16000), "silent clip"),
        (lambda p: sf.write(p, np.zeros(0, np.float32), 16000), "empty clip"),
        (lambda p: sf.write(p, np.array([0.1, np.nan, 0.2] * 100, np.float32), 16000, subtype="FLOAT"), "NaN"),
    ],
    ids=["corrupt", "not-audio", "all-zero", "empty", "nan"],
)
def test_bad_audio_is_refused_naming_the_file(tmp_path, make, message):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError, match=message) as err:
        audio.load_audio(path)
    assert str(path) in str(err.value)


def test_truncated_wav_is_refused(tmp_path):
    sf.write(tmp_path / "full.wav", tone(), 16000, subtype="PCM_16")
    data = (tmp_path / "full.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match="truncated"):
        audio.load_audio(tmp_path / "cut.wav")


def test_unsupported_format_is_refused(tmp_path):
    path = tmp_path / "clip.m4a"
    path.write_bytes(b"\x00\x00\x00\x18ftypM4A " + bytes(200))
    with pytest.raises(AudioError, match="convert it to WAV"):
        audio.load_audio(path)


def test_segment_reading(tmp_path):
    sf.write(tmp_path / "a.wav", tone(), 16000)
    clip = audio.load_audio(tmp_path / "a.wav", start_s=0.25, end_s=0.5)
    assert len(clip.samples) == 4000


@pytest.mark.parametrize("snr_db", [-10.0, 0.0, 7.5, 20.0])
def test_mix_at_snr_measures_back(snr_db):
    rng = np.random.default_rng(1)
    sig = np.zeros(16000, np.float32)
    sig[3200:12800] = tone(300, seconds=0.6)  # active only in the middle (20 ms frame aligned)
    noise = audio.coloured_noise(16000, "pink", rng)
    mix, scaled = audio.mix_at_snr(sig, noise, snr_db)
    # independent measurement: power over the known active part
    active = slice(3200, 12800)
    measured = 10 * np.log10(np.mean(sig[active].astype(float) ** 2) / np.mean(scaled[active].astype(float) ** 2))
    assert measured == pytest.approx(snr_db, abs=0.1)
    assert audio.measure_snr(sig, scaled) == pytest.approx(snr_db, abs=0.1)
    np.testing.assert_allclose(mix, sig + scaled, atol=1e-6)


def test_peak_normalise_and_silence():
    y = audio.peak_normalise(tone() * 0.01)
    assert np.max(np.abs(y)) == pytest.approx(audio.PEAK_LEVEL, rel=1e-6)
    with pytest.raises(AudioError):
        audio.peak_normalise(np.zeros(100, np.float32))


def test_content_hash_survives_rename_and_lossless_reencode(tmp_path):
    x = audio.peak_normalise(tone(523))
    audio.write_wav(tmp_path / "a.wav", x)
    pcm, sr = sf.read(tmp_path / "a.wav", dtype="int16")  # lossless: the integers, re-encoded
    sf.write(tmp_path / "b.flac", pcm, sr, subtype="PCM_16")
    h = [audio.content_hash(audio.load_audio(tmp_path / f).samples) for f in ("a.wav", "b.flac")]
    assert h[0] == h[1] == audio.content_hash(x)
    assert audio.content_hash(x * 0.5) != h[0]


def test_noise_colours_have_expected_slopes():
    rng = np.random.default_rng(0)
    for colour, slope in (("white", 0.0), ("pink", -1.0), ("brown", -2.0)):
        x = audio.coloured_noise(2**16, colour, rng)
        f = np.fft.rfftfreq(len(x))[1:]
        p = np.abs(np.fft.rfft(x))[1:] ** 2
        fitted = np.polyfit(np.log10(f[f > 1e-3]), np.log10(p[f > 1e-3]), 1)[0]
        assert fitted == pytest.approx(slope, abs=0.15)
