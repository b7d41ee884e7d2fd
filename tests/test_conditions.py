"""Condition sets: SNR, band limits and reverberation measured back; the generated dataset's contract."""

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import periodogram

from core.data import audio
from core.data import conditions as cond
from core.data.splits import make_split, save_split
from core.errors import LabError

SR = 16_000


def _snr_independent(signal, noise, frame=320, floor_db=-40.0):
    """SNR over the signal's active 20 ms frames (frame power within 40 dB of the loudest), re-implemented."""
    n = int(np.ceil(len(signal) / frame)) * frame
    s = np.pad(signal.astype(np.float64), (0, n - len(signal)))
    p = (s.reshape(-1, frame) ** 2).sum(1) / np.minimum(frame, len(signal) - frame * np.arange(n // frame))
    keep = np.repeat(10 * np.log10(p + 1e-20) >= 10 * np.log10(p.max() + 1e-20) + floor_db, frame)[: len(signal)]
    return 10 * np.log10(np.mean(signal[keep].astype(np.float64) ** 2) / np.mean(noise[keep].astype(np.float64) ** 2))


@pytest.mark.parametrize("noise_kind", ["white", "pink"])
def test_mixed_snr_measures_back_within_a_tenth_of_a_db(default_ds, noise_kind):
    clean = default_ds.manifest.query("snr_db != snr_db and duration_ms == 1000")
    rng = np.random.default_rng(0)
    source = cond.NoiseSource(noise_kind, SR)
    for clip_id in clean["clip_id"].iloc[::40]:
        x = default_ds.load_clip(clip_id).samples
        for dur in (20, 80, 400, 1000):
            s = audio.fade(cond.active_window(x, SR, dur * SR // 1000), SR, ms=min(5.0, dur / 4))
            for snr in (-10.0, 0.0, 7.5, 20.0):
                mix, scaled = audio.mix_at_snr(s, source(len(s), rng), snr, SR)
                assert _snr_independent(s, scaled) == pytest.approx(snr, abs=0.1)
                assert _snr_independent(mix - scaled, scaled) == pytest.approx(snr, abs=0.1)


@pytest.mark.parametrize("band", ["telephone", "am-radio"])
def test_band_limited_spectrum_has_no_energy_outside_the_band(band):
    lo, hi = cond.BANDS[band]
    x = audio.coloured_noise(SR, "pink", np.random.default_rng(1))
    y = audio.to_pcm16(audio.peak_normalise(cond.band_limit(x, SR, (lo, hi)))) / 32768.0  # as stored in a WAV
    f, p = periodogram(y, SR, window="hann")
    outside = p[(f < lo) | (f > hi)].sum() / p.sum()
    assert 10 * np.log10(outside) < -30
    mid = (f > lo + 100) & (f < hi - 100)
    y2 = cond.band_limit(x, SR, (lo, hi))
    ratio = periodogram(y2, SR, window="hann")[1][mid].sum() / periodogram(x, SR, window="hann")[1][mid].sum()
    assert ratio == pytest.approx(1.0, abs=0.02)  # the pass band is left alone


def _t30(h, sr):
    """RT60 by an independent route: Schroeder curve, T30 (−5 to −35 dB) regression."""
    edc = np.cumsum((h**2)[::-1])[::-1]
    db = 10 * np.log10(edc / edc[0])
    i5, i35 = np.argmax(db <= -5), np.argmax(db <= -35)
    t = np.arange(len(h)) / sr
    slope = np.polyfit(t[i5:i35], db[i5:i35], 1)[0]
    return -60 / slope


@pytest.mark.parametrize("room", ["small-room", "large-hall"])
def test_rir_rt60_measures_back_within_15_percent(room):
    rt60 = cond.ROOMS[room]
    for seed in range(3):
        h = cond.synth_rir(rt60, SR, np.random.default_rng(seed))
        assert _t30(h, SR) == pytest.approx(rt60, rel=0.15)
        assert cond.measure_rt60(h, SR) == pytest.approx(rt60, rel=0.15)


@pytest.fixture(scope="module")
def condition_set(default_ds):
    save_split(default_ds, "condsplit", make_split(default_ds.manifest, seed=11), {"seed": 11})
    spec = cond.ConditionSpec(
        durations_ms=(20, 200, 1000),
        snrs_db=(-5.0, 10.0),
        noise="babble",
        bands=("clean", "telephone"),
        rooms=("none", "small-room"),
        bases_per_label=3,
    )
    return cond.generate(default_ds, "condsplit", "test", "condtest", spec, force=True), spec


def test_generated_set_keeps_base_clips_and_conditions(default_ds, condition_set):
    ds, spec = condition_set
    m = ds.manifest
    assert m.groupby("label")["base_clip_id"].nunique().to_dict() == {"nonspeech": 3, "speech": 3}
    assert len(m) == 6 * 3 * 3 * 2 * 2  # bases × durations × (clean + 2 SNRs) × bands × rooms
    src = default_ds.manifest.set_index("clip_id")
    assert (m["base_clip_id"] == src.loc[m["source_clip_id"], "base_clip_id"].to_numpy()).all()
    assert (m["group_id"] == src.loc[m["source_clip_id"], "group_id"].to_numpy()).all()
    assert set(m["band"]) == {"clean", "telephone"} and set(m["reverb"]) == {"none", "small-room"}
    noisy = m[m["snr_db"].notna()]
    np.testing.assert_allclose(noisy["snr_measured_db"], noisy["snr_db"], atol=0.1)
    assert (m.loc[m["snr_db"].isna(), "noise_type"] == "none").all() and (noisy["noise_type"] == "babble").all()
    evaluated = set(m["group_id"])
    assert ds.info["babble_groups"] and not evaluated & set(ds.info["babble_groups"])
    for row in m.sample(12, random_state=0).itertuples():
        y, sr = sf.read(ds.root / row.path)
        assert sr == SR and len(y) == round(row.duration_ms * SR / 1000)
        assert np.abs(y).max() == pytest.approx(audio.PEAK_LEVEL, abs=2e-4)
    from core.data.splits import load_split

    assert (load_split(ds, "conditions") == "test").all()


def test_saved_audio_is_the_rendered_variant(default_ds, condition_set):
    ds, spec = condition_set
    row = ds.manifest.query("band == 'telephone' and reverb == 'none' and snr_db == 10 and duration_ms == 200").iloc[0]
    x = default_ds.load_clip(row["source_clip_id"]).samples
    y = ds.load_clip(row["clip_id"]).samples
    f, p = periodogram(y, SR)
    assert 10 * np.log10(p[(f < 300) | (f > 3400)].sum() / p.sum()) < -30
    clean = ds.manifest.query(
        "base_clip_id == @row.base_clip_id and band == 'clean' and reverb == 'none' and snr_db != snr_db "
        "and duration_ms == 200"
    ).iloc[0]
    expected = audio.peak_normalise(audio.fade(cond.active_window(x, SR, 3200), SR))
    np.testing.assert_allclose(ds.load_clip(clean["clip_id"]).samples, expected, atol=1 / 32768 + 1e-6)


def test_bad_requests_fail_clearly(default_ds, condition_set):
    with pytest.raises(LabError, match="exists"):
        cond.generate(default_ds, "condsplit", "test", "condtest", cond.ConditionSpec(bases_per_label=1))
    with pytest.raises(LabError, match="outside the evaluated"):
        cond.generate(default_ds, "condsplit", "all", "condx", cond.ConditionSpec(noise="babble", bases_per_label=1))
    with pytest.raises(LabError, match="band must be one of"):
        cond.generate(default_ds, "condsplit", "test", "condx", cond.ConditionSpec(bands=("radio",)))
    with pytest.raises(LabError, match="noise folder .* not found"):
        cond.generate(
            default_ds, "condsplit", "test", "condx", cond.ConditionSpec(noise="folder", noise_folder="/nonexistent")
        )
    from core.data.datasets import list_datasets

    assert "condx" not in list_datasets()
