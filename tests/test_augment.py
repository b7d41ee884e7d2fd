"""Training augmentation for real recordings, against known answers: a stretched tone keeps its pitch
and changes its length by the factor, a shifted tone moves by the semitones asked, a simulated room
decays near the RT60 it was built for, the telephone channel leaves nothing outside 300–3400 Hz,
and a run's seed reproduces every draw. The settings travel through a run's config and its CLI line."""

import argparse

import numpy as np
import pytest

from core.data import augment as aug
from core.data.conditions import measure_rt60
from core.errors import LabError

SR = 16_000


def tone(freq: float, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / SR)[np.argmax(spec)])


def test_time_stretch_changes_the_length_by_the_factor_and_keeps_the_pitch():
    x = tone(440.0)
    a = aug.Augmentation(stretch=0.2)
    for seed in range(3):
        rng = np.random.default_rng(seed)
        rate = np.random.default_rng(seed).uniform(0.8, 1.2)  # the draw talker() makes first
        y = aug.talker(x, a, rng)
        assert len(y) == pytest.approx(len(x) / rate, rel=0.01)
        assert peak_hz(y) == pytest.approx(440.0, abs=3.0)


def test_pitch_shift_moves_a_tone_by_the_semitones_drawn_and_keeps_the_length():
    x = tone(440.0)
    rng = np.random.default_rng(5)
    steps = np.random.default_rng(5).uniform(-3, 3)
    y = aug.talker(x, aug.Augmentation(pitch=3), rng)
    assert len(y) == len(x)
    assert peak_hz(y) == pytest.approx(440.0 * 2 ** (steps / 12), rel=0.01)


def test_simulated_rooms_decay_near_their_target_and_repeat_with_the_seed():
    short = aug.room_bank(3, (0.3, 0.3), n=6)
    long = aug.room_bank(3, (0.8, 0.8), n=6)
    rt_short = np.median([measure_rt60(h, SR) for h in short])
    rt_long = np.median([measure_rt60(h, SR) for h in long])
    assert 0.2 < rt_short < 0.45 and 0.45 < rt_long < 1.2 and rt_long > 1.5 * rt_short
    again = aug.room_bank.__wrapped__(3, (0.3, 0.3), n=6)  # recomputed, not the cache
    assert all(np.array_equal(a, b) for a, b in zip(short, again))
    other = aug.room_bank(4, (0.3, 0.3), n=6)
    assert not np.array_equal(short[0], other[0])
    y = aug.in_room(tone(300.0), short[0])
    assert len(y) == SR and np.max(np.abs(y)) == pytest.approx(0.5, rel=1e-5)  # length and peak kept


def test_the_telephone_channel_leaves_no_energy_outside_its_band():
    x = (np.random.default_rng(0).standard_normal(SR) * 0.1).astype(np.float32)
    y = aug.telephone(x)
    assert len(y) == len(x)
    spec = np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(len(y), 1 / SR)
    inside = spec[(f > 400) & (f < 3300)].mean()
    assert spec[f > 4100].mean() < inside * 1e-3  # 8 kHz sampling: nothing above 4 kHz
    assert spec[(f > 3500) & (f < 4000)].mean() < inside * 1e-2
    assert spec[f < 250].mean() < inside * 1e-2


def test_every_codec_keeps_the_length_and_the_signal():
    x = tone(500.0, 1.0) + tone(1200.0, 1.0, 0.2)
    assert "gsm" in aug.available_codecs()  # built into every libsndfile
    for name in aug.available_codecs():
        y = aug._at_length(aug._encode(x, name, 0.5), len(x))
        err = y - x
        lag = int(np.argmax(np.correlate(y[2000:6000], x[2000:4000], "valid")))  # encoders may delay
        assert len(y) == len(x), name
        assert np.corrcoef(y[2000 + lag : 14000 + lag - 2000], x[2000 : 14000 - 2000])[0, 1] > 0.9, name
        assert np.mean(err**2) > 0  # it did change the signal


def test_gain_clips_above_full_scale_and_quiets_below():
    y = aug.gain(tone(100.0, amp=0.9), 6.0)
    assert np.max(np.abs(y)) == 1.0 and np.mean(np.abs(y) == 1.0) > 0.1
    assert np.max(np.abs(aug.gain(tone(100.0, amp=0.9), -20.0))) == pytest.approx(0.09, rel=1e-4)


def test_the_chain_repeats_with_its_seed_and_does_nothing_when_off():
    x = tone(220.0) + tone(900.0, amp=0.1)
    a = aug.Augmentation(stretch=0.1, pitch=2, room_prob=0.5, gain_db=(-20, 6), telephone_prob=0.3, codec_prob=0.3)
    runs = []
    for _ in range(2):
        rng = np.random.default_rng(11)
        runs.append([aug.after_noise(aug.before_noise(x, a, rng, 0), a, rng) for _ in range(6)])
    assert all(np.array_equal(p, q) for p, q in zip(*runs))
    rng = np.random.default_rng(0)
    off = aug.Augmentation()
    assert not off.active
    assert np.array_equal(aug.after_noise(aug.before_noise(x, off, rng, 0), off, rng), x)
    assert rng.random() == np.random.default_rng(0).random()  # no draw was made


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"stretch": 0.6}, "time stretch must be in"),
        ({"pitch": -1}, "pitch shift must be in"),
        ({"room_prob": 1.5}, "room_prob is a probability"),
        ({"room_rt60": (0.9, 0.2)}, "room RT60 range"),
        ({"gain_db": (-80, 0)}, "gain range must satisfy"),
        ({"gain_db": (6, 0)}, "gain range must satisfy"),
    ],
)
def test_out_of_range_settings_are_refused_by_name(kwargs, message):
    with pytest.raises(LabError, match=message):
        aug.Augmentation(**kwargs)


def test_a_runs_augmentation_is_in_its_config_its_checks_and_its_command_line():
    from core.cli.runs import _add_train_settings
    from core.runs.commands import config_flags
    from core.runs.registry import check_numbers
    from core.runs.train_config import TrainConfig

    cfg = TrainConfig(stretch=0.1, pitch=2.0, room_prob=0.3, room_rt60=(0.3, 0.6), gain_db=(-30.0, 6.0),
                      telephone_prob=0.2, codec_prob=0.1, noise_snr=(5.0, 15.0))  # fmt: skip
    assert cfg.augmentation() == aug.Augmentation(0.1, 2.0, 0.3, (0.3, 0.6), (-30.0, 6.0), 0.2, 0.1)
    again = TrainConfig.from_dict(__import__("json").loads(__import__("json").dumps(cfg.__dict__)))
    assert again == cfg  # config.json round trip, ranges as tuples
    parser = argparse.ArgumentParser()
    _add_train_settings(parser)
    args = vars(parser.parse_args(config_flags(cfg)))
    assert TrainConfig(**{k: v for k, v in args.items() if v is not None}) == cfg
    with pytest.raises(LabError, match="room_prob is a probability"):
        check_numbers(TrainConfig(room_prob=2.0))
    with pytest.raises(LabError, match="pitch must be a number"):
        check_numbers(TrainConfig(pitch="2"))
