"""Real recordings that Debian packages install: which packages, which files, their labels,
speakers and licences.

Speech: telephone prompts recorded by three voice actors (asterisk-core-sounds, 8 kHz; one
voice records English and Spanish, so a group is the voice, never the language folder),
with two more voices of their own (Russian; Italian by Menardi), letters and syllables spoken
in 22 languages (klettres-data, one voice per language folder), Mandarin syllables in two
recorded voice sets (gcin-voice) and codec2's reference speakers (codec2-examples). Non-speech: music (fillets-ng-data,
colobot-common-sounds, pinball-data; asterisk's music on hold, one group per artist), game effects (colobot-common-sounds, heroes-sound-effects
and five more games), instrument, drum and effect samples (lmms-common) and desktop event sounds
(sound-theme-freedesktop, whose spoken channel names are speech of their own; oxygen-sounds,
yaru-theme-sound).

A file whose label is uncertain is left out by name, with the reason (`EXCLUDED`): a voice
saying "go!" among effects, a radio channel recording without a voice among codec2's speech,
a concatenation of other files. Licences are read per file from the package's own
machine-readable copyright file (`licence_of`). Nothing here is a Python package's sample or
test audio (those are kept aside to test the lab independently).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

from core.errors import LabError

SPEECH_PACKAGES = (
    "asterisk-core-sounds-en-wav",
    "asterisk-core-sounds-es-wav",
    "asterisk-core-sounds-fr-wav",
    "asterisk-core-sounds-it-wav",
    "asterisk-core-sounds-ru-wav",
    "asterisk-prompt-it-menardi-wav",
    "klettres-data",
    "codec2-examples",
    "gcin-voice",
    "sound-theme-freedesktop",
)
NONSPEECH_PACKAGES = (
    "fillets-ng-data",
    "colobot-common-sounds",
    "heroes-sound-effects",
    "frozen-bubble-data",
    "lbreakout2-data",
    "tuxpaint-data",
    "sound-icons",
    "lmms-common",
    "oxygen-sounds",
    "yaru-theme-sound",
    "chromium-bsu-data",
    "pinball-data",
    "funnyboat",
    "asterisk-moh-opsound-wav",
)
PACKAGES = SPEECH_PACKAGES + NONSPEECH_PACKAGES
DOC = Path("/usr/share/doc")

# codec2's reference recordings: file stem -> speaker (a decoded copy keeps its original's speaker)
CODEC2_SPEAKERS = {
    "hts1a": "hts", "hts2a": "hts", "forig": "forig", "f2400": "forig", "morig": "morig", "m2400": "morig",
    "mmt1": "mmt1", "ve9qrp": "ve9qrp", "vk5qi": "vk5qi", "big_dog": "big_dog", "cross": "cross",
    "wia_16kHz": "wia", "speech_orig_16k": "speech_orig",
}  # fmt: skip
# files a pretrained VAD found speech-like among effects when this catalogue was made (kept out by name,
# so a build never depends on a detector)
SCREENED = "speech-like (Silero VAD above 0.5 when the catalogue was made; label uncertain)"
EXCLUDED = {
    "codec2-examples": {
        "all.wav": "a concatenation of the other recordings (would copy them across groups)",
        "david4.wav": "an HF radio channel recording with no voice in it (label uncertain)",
        "vk2tpm_004.wav": "an HF radio channel recording with no voice in it (label uncertain)",
    },
    "heroes-sound-effects": {
        name: "a voice among the effects (label uncertain)"
        for name in ("go.wav", "oh.wav", "ho_yeh.wav", "no.wav", "stop.wav", "foule1.wav", "foule2.wav")
    },
    "colobot-common-sounds": {
        name: SCREENED for name in ("sound036.wav", "sound064.wav", "sound070.wav", "sound072.wav", "sound073.wav")
    },
    **{p: {"silence/*": "silence, not a prompt"} for p in SPEECH_PACKAGES if p.startswith("asterisk-")},
    "frozen-bubble-data": {
        name: "a voice or a crowd among the effects (label uncertain)"
        for name in ("applause.ogg", "chatted.ogg", "hurry.ogg", "noh.ogg", "snore.ogg")
    }
    | {"newroot.ogg": SCREENED},
    "lbreakout2-data": {
        name: "a spoken word among the effects"
        for name in ("dammit.wav", "damn.wav", "excellent.wav", "verygood.wav", "wontgiveup.wav")
    },
    "tuxpaint-data": {
        name: "a voice among the effects (label uncertain)"
        for name in ("areyousure.wav", "giggle.wav", "prompt.wav", "tuxok.wav", "youcannot.wav")
    }
    | {name: SCREENED for name in ("eraser1.wav", "paint1.wav")},
    "lmms-common": {
        **{
            name: "a crowd or a breath (label uncertain)"
            for name in ("applause01.ogg", "breath01.ogg", "raving_crowd01.ogg")
        },
        **{
            name: "a WAV file named .ogg whose header libsndfile cannot read"
            for name in ("kick04.ogg", "scratch01.ogg", "wind_chimes01.ogg", "harpsichord01.ogg", "hit01.ogg")
        },
    },  # fmt: skip
    "pinball-data": {
        **{name: SCREENED for name in ("gameover.wav", "loop.wav", "up.wav")},
        "bumpsoft.wav": "a near copy of LMMS's kick_soft01 (the lab's audit, copy score 0.80)",
    },
    "oxygen-sounds": {
        "Oxygen-Im-Message-In.ogg": "the same audio as freedesktop's message-new-instant.oga (kept there)",
        **{
            name: "a near copy of freedesktop's message-new-instant.oga (the lab's audit)"
            for name in ("Oxygen-Im-New-Mail.ogg", "Oxygen-Sys-Warning.ogg")
        },
    },
    "funnyboat": {"kraah.ogg": SCREENED},
    "sound-theme-freedesktop": {
        name: "its licence is not stated in the package's copyright file"
        for name in ("dialog-error.oga", "dialog-warning.oga", "window-attention.oga", "window-question.oga")
    },
}
# non-speech packages read by folder: (folder under /usr/share, pattern, group, kind); one group per source
FOLDERS = {
    "frozen-bubble-data": [("games/frozen-bubble/snd", "*.ogg", "frozen-bubble-effects", "effect")],
    "lbreakout2-data": [("games/lbreakout2/sounds", "*.wav", "lbreakout2-effects", "effect")],
    "tuxpaint-data": [("tuxpaint/sounds", "*.wav", "tuxpaint-effects", "effect")],
    "sound-icons": [("sounds/sound-icons", "*.wav", "sound-icons-effects", "effect")],  # extension-less files: words
    "lmms-common": [
        *((f"lmms/samples/{d}", "*.ogg", "lmms-drums", "drum sample") for d in ("drums", "beats", "latin")),
        *((f"lmms/samples/{d}", "*.ogg", "lmms-instruments", "instrument sample")
          for d in ("instruments", "basses", "bassloops", "stringsnpads")),
        *((f"lmms/samples/{d}", "*.ogg", "lmms-effects", "effect") for d in ("effects", "misc")),
    ],  # its "shapes" and "waveforms" are single-cycle oscillator tables, not recordings
    "oxygen-sounds": [("sounds", "Oxygen-*.ogg", "oxygen-events", "desktop event")],
    "yaru-theme-sound": [("sounds/Yaru/stereo", "*.oga", "yaru-events", "desktop event")],
    "chromium-bsu-data": [("games/chromium-bsu/wav", "*.wav", "chromium-bsu-effects", "effect")],
    "pinball-data": [("games/pinball", "*/*.wav", "pinball-effects", "effect"),
                     ("games/pinball", "*/*.ogg", "pinball-music", "music")],
    "funnyboat": [("games/funnyboat/data", "*.ogg", "funnyboat", "effect")],
}  # fmt: skip
# packages whose copyright file is not machine-readable: the licence its text states
PACKAGE_LICENCE = {
    "fillets-ng-data": "GPL-2",
    "lbreakout2-data": "GPL (version not stated)",
    "asterisk-moh-opsound-wav": "CC-BY-SA-3.0",
}


@dataclass(frozen=True)
class Recording:
    """One installed file and what the lab knows of it."""

    path: Path
    label: str  # speech | nonspeech
    group: str  # the speaker (speech) or the source (non-speech)
    package: str
    licence: str
    language: str = ""
    kind: str = ""  # telephone prompt, spoken letter, music, effect, …


def installed(package: str) -> bool:
    return (DOC / package / "copyright").is_file()


def missing_packages(packages: tuple[str, ...] = PACKAGES) -> list[str]:
    return [p for p in packages if not installed(p)]


def install_hint(missing: list[str]) -> str:
    return (
        f"the real-voice set needs the Debian packages {' '.join(missing)}: run ./run.sh as root (it installs "
        f"them), or `sudo apt-get install {' '.join(missing)}`"
    )


def licence_table(package: str, doc: Path = DOC) -> list[tuple[list[str], str]]:
    """(Files patterns, License) stanzas of a package's DEP-5 copyright file, in order."""
    text = (doc / package / "copyright").read_text(encoding="utf-8", errors="replace")
    out: list[tuple[list[str], str]] = []
    for stanza in re.split(r"\n\s*\n", text):
        files = re.search(r"^Files:(.*(?:\n[ \t].*)*)", stanza, re.M)
        licence = re.search(r"^License:[ \t]*(\S.*?)[ \t]*$", stanza, re.M)
        if files and licence:
            out.append((files.group(1).split(), licence.group(1)))
    return out


def licence_of(path: Path, table: list[tuple[list[str], str]], fallback: str = "") -> str:
    """The licence of an installed file: the last stanza whose pattern matches the end of its path
    (DEP-5: later stanzas override earlier ones)."""
    found = ""
    for patterns, licence in table:
        for pattern in patterns:
            if pattern == "*" or any(fnmatch.fnmatch(str(path), f"*/{tail}") for tail in _tails(pattern)):
                found = licence
    if not (found or fallback):
        raise LabError(f"{path}: no licence found in its package's copyright file; leave it out (EXCLUDED)")
    return found or fallback


def _tails(pattern: str) -> list[str]:
    """A source-tree pattern and its shorter tails of at least two parts ("data/wav/*" → also "wav/*"):
    packages install "data/wav/x.wav" as ".../wav/x.wav"; "debian/*" never shrinks to "*"."""
    parts = pattern.split("/")
    return ["/".join(parts[i:]) for i in range(max(1, len(parts) - 1))]


def _excluded(package: str, path: Path) -> bool:
    """Left out by name ("go.wav") or by folder ("silence/*") in `EXCLUDED`."""
    rules = EXCLUDED.get(package, {})
    return path.name in rules or any(fnmatch.fnmatch(f"{path.parent.name}/{path.name}", k) for k in rules if "/" in k)


def recordings(packages: tuple[str, ...] = PACKAGES, root: Path = Path("/")) -> list[Recording]:
    """Every labelled recording of the installed `packages` (under `root`), in a stable order."""
    missing = [p for p in packages if not (root / DOC.relative_to("/") / p / "copyright").is_file()]
    if missing:
        raise LabError(install_hint(missing))
    share = root / "usr/share"
    out: list[Recording] = []
    for package in packages:
        table = licence_table(package, root / DOC.relative_to("/"))
        for rec in _package_files(package, share):
            if not _excluded(package, rec.path):
                licence = licence_of(rec.path, table, PACKAGE_LICENCE.get(package, ""))
                out.append(Recording(**{**rec.__dict__, "licence": licence}))
    return sorted(out, key=lambda r: str(r.path))


def _package_files(package: str, share: Path) -> list[Recording]:
    """The package's audio files with label, group, language and kind (licence filled in later)."""
    if package.startswith(("asterisk-core-sounds-", "asterisk-prompt-")):
        out = []
        for voice_dir in sorted((share / "asterisk/sounds").glob("*_*_*_*")):
            language, _, sex, voice = voice_dir.name.split("_", 3)
            if not any(voice_dir.rglob("*.wav")) or package != _asterisk_package(language, voice):
                continue
            out += [Recording(f, "speech", f"asterisk-{voice.lower()}", package, "", language, "telephone prompt")
                    for f in sorted(voice_dir.rglob("*.wav"))]  # fmt: skip
        return out
    if package == "klettres-data":
        return [Recording(f, "speech", f"klettres-{f.parent.parent.name}", package, "", f.parent.parent.name,
                          "spoken letter" if f.parent.name == "alpha" else "spoken syllable")
                for f in sorted((share / "klettres").glob("*/*/*.ogg"))]  # fmt: skip
    if package == "gcin-voice":  # two recorded voice sets, told apart by file name in its copyright file
        voices = {"3": "gcin-liu", "5": "gcin-chulo"}
        return [Recording(f, "speech", voices[f.stem], package, "", "zh-TW", "spoken syllable")
                for f in sorted((share / "gcin-voice/ogg").glob("*/*.ogg")) if f.stem in voices]  # fmt: skip
    if package == "asterisk-moh-opsound-wav":  # music on hold: one group per artist
        return [Recording(f, "nonspeech", f"opsound-{f.stem.split('-')[0].replace('_', '-')}", package, "", "",
                          "music") for f in sorted((share / "asterisk/moh").glob("*.wav"))]  # fmt: skip
    if package == "codec2-examples":
        files = sorted((share / "codec2/wav").glob("*.wav")) + sorted((share / "codec2/raw").glob("*.wav"))
        return [Recording(f, "speech", f"codec2-{CODEC2_SPEAKERS[f.stem]}", package, "", "en", "codec reference")
                for f in files if f.stem in CODEC2_SPEAKERS]  # fmt: skip
    if package == "sound-theme-freedesktop":
        out = []
        for f in sorted((share / "sounds/freedesktop/stereo").glob("*.oga")):
            voice = f.stem.startswith("audio-channel-")
            out.append(Recording(f, "speech" if voice else "nonspeech",
                                 "freedesktop-voice" if voice else "freedesktop-events", package, "",
                                 "en" if voice else "", "spoken channel name" if voice else "desktop event"))  # fmt: skip
        return out
    if package == "fillets-ng-data":
        return [Recording(f, "nonspeech", "fillets-music", package, "", "", "music")
                for f in sorted((share / "games/fillets-ng/music").glob("*.ogg"))]  # fmt: skip
    if package == "colobot-common-sounds":
        base = share / "games/colobot"
        return [*(Recording(f, "nonspeech", "colobot-music", package, "", "", "music")
                  for f in sorted((base / "music").glob("*.ogg"))),
                *(Recording(f, "nonspeech", "colobot-effects", package, "", "", "effect")
                  for f in sorted((base / "sounds").glob("*.wav")))]  # fmt: skip
    if package == "heroes-sound-effects":
        return [Recording(f, "nonspeech", "heroes-effects", package, "", "", "effect")
                for f in sorted((share / "games/heroes/sfx").glob("*.wav"))]  # fmt: skip
    if package in FOLDERS:
        out = []
        for folder, pattern, group, kind in FOLDERS[package]:
            for f in sorted((share / folder).glob(pattern)):
                music = kind == "effect" and "zik" in f.stem  # frozen-bubble's music tracks
                out.append(Recording(f, "nonspeech", group.replace("-effects", "-music") if music else group, package, "", "",
                                     "music" if music else kind))  # fmt: skip
        return out
    raise LabError(f"unknown sound package {package!r}; known: {', '.join(PACKAGES)}")


def _asterisk_package(language: str, voice: str) -> str:
    if voice == "Menardi":
        return "asterisk-prompt-it-menardi-wav"
    return f"asterisk-core-sounds-{language.split('-')[0][:2]}-wav"
