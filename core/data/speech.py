"""Speech sources of the embedded dataset: synthetic speakers and what they say.

Each `Voice` is one speaker group. Sentences are assigned so that no two groups say the
same sentence, which keeps the content-level leakage audit free of false alarms between
groups on a clean split.
"""

from __future__ import annotations

import itertools

import numpy as np

from core.data.tts import Voice

# 16 speaker groups: 4 English accents and 12 other languages, with varied variant, pitch and rate.
VOICES: dict[str, Voice] = {
    "en-m1": Voice("en", "m1", pitch=38, rate=150),
    "en-us-f4": Voice("en-us", "f4", pitch=72, rate=178),
    "en-gb-scotland-m7": Voice("en-gb-scotland", "m7", pitch=50, rate=145),
    "en-029-f1": Voice("en-029", "f1", pitch=60, rate=165),
    "de-m2": Voice("de", "m2", pitch=44, rate=150),
    "fr-f3": Voice("fr", "f3", pitch=68, rate=168),
    "es-m4": Voice("es", "m4", pitch=48, rate=172),
    "it-f5": Voice("it", "f5", pitch=70, rate=160),
    "pt-m5": Voice("pt", "m5", pitch=40, rate=158),
    "nl-f4": Voice("nl", "f4", pitch=64, rate=150),
    "sv-m6": Voice("sv", "m6", pitch=52, rate=162),
    "pl-f1": Voice("pl", "f1", pitch=62, rate=155),
    "da-klatt": Voice("da", "klatt", pitch=46, rate=150),
    "fi-f2": Voice("fi", "f2", pitch=66, rate=160),
    "cs-m3": Voice("cs", "m3", pitch=42, rate=155),
    "ro-croak": Voice("ro", "croak", pitch=36, rate=145),
}

# The lab base model's training pool: speakers that never enter the lab's dataset.
POOL_VOICES: dict[str, Voice] = {
    "pool-en-us-m2": Voice("en-us", "m2", pitch=55, rate=165),
    "pool-en-f4": Voice("en", "f4", pitch=75, rate=150),
    "pool-hu-m8": Voice("hu", "m8", pitch=45, rate=155),
    "pool-tr-f1": Voice("tr", "f1", pitch=65, rate=160),
    "pool-id-m1": Voice("id", "m1", pitch=40, rate=150),
    "pool-sk-f3": Voice("sk", "f3", pitch=70, rate=165),
    "pool-hr-m4": Voice("hr", "m4", pitch=50, rate=145),
    "pool-ca-f2": Voice("ca", "f2", pitch=60, rate=170),
}
ALL_VOICES = {**VOICES, **POOL_VOICES}

_SENTENCES: dict[str, list[str]] = {
    "pool-en-us-m2": [
        "Seven green kites drifted over the quiet valley.",
        "Please bring the blue folder to the second floor.",
        "Thunder rolled across the hills before midnight.",
        "Her grandfather restored an old steam engine.",
    ],
    "pool-en-f4": [
        "The lighthouse keeper counted ships until dawn.",
        "Fresh snow covered the mountain road overnight.",
        "Our team finished the puzzle in record time.",
        "A curious fox watched us from the meadow.",
    ],
    "hu": [
        "A vonat reggel hétkor indul Budapestre.",
        "Nagymamám finom almás pitét süt.",
        "Holnap kirándulni megyünk a hegyekbe.",
        "A folyó partján sok horgász ül.",
    ],
    "tr": [
        "Tren sabah yedide İstanbul'a kalkıyor.",
        "Annem her pazar taze ekmek yapar.",
        "Yarın deniz kenarında yürüyüş yapacağız.",
        "Kütüphane hafta sonu erken kapanıyor.",
    ],
    "id": [
        "Kereta ke Bandung berangkat pukul tujuh pagi.",
        "Ibu saya memasak nasi goreng setiap hari.",
        "Besok kami akan berenang di pantai.",
        "Pasar ini ramai sekali pada hari Minggu.",
    ],
    "sk": [
        "Vlak do Košíc odchádza o siedmej ráno.",
        "Moja stará mama pečie výborné koláče.",
        "Zajtra pôjdeme na výlet do Tatier.",
        "Na námestí hrá večer malá kapela.",
    ],
    "hr": [
        "Vlak za Split polazi u sedam sati.",
        "Moja baka peče najbolje kolače.",
        "Sutra idemo na izlet na more.",
        "Na trgu svake večeri svira glazba.",
    ],
    "ca": [
        "El tren cap a Girona surt a les set.",
        "La meva àvia cuina una paella boníssima.",
        "Demà anirem a caminar per la muntanya.",
        "El mercat del barri obre molt d'hora.",
    ],
    "de": [
        "Der Zug nach Hamburg fährt heute eine Stunde später ab.",
        "Meine Schwester kocht am Sonntag immer eine große Suppe.",
        "Im Garten blühen die Rosen schon seit Anfang Mai.",
        "Kannst du mir bitte sagen, wo der nächste Bahnhof ist?",
        "Wir haben gestern Abend lange über das Wetter gesprochen.",
        "Das Museum bleibt wegen Bauarbeiten bis Freitag geschlossen.",
    ],
    "fr": [
        "Le marché du samedi ouvre très tôt le matin.",
        "Nous avons visité un petit village près de la mer.",
        "Mon voisin joue du piano tous les soirs après le dîner.",
        "Pourriez-vous fermer la fenêtre, il fait un peu froid?",
        "Les enfants ont construit une cabane au fond du jardin.",
        "La bibliothèque prête aussi des disques et des films.",
    ],
    "es": [
        "El autobús de la mañana siempre llega con retraso.",
        "Mi abuela prepara la mejor tortilla de todo el barrio.",
        "Mañana vamos a caminar por la orilla del río.",
        "¿Sabes a qué hora cierra la farmacia los domingos?",
        "Las montañas del norte están cubiertas de nieve.",
        "Compramos pan fresco y fruta en el mercado central.",
    ],
    "it": [
        "Il treno per Firenze parte dal binario numero tre.",
        "Ogni estate andiamo al mare con tutta la famiglia.",
        "La pizza di questo forno è famosa in tutta la città.",
        "Puoi chiudere la porta quando esci, per favore?",
        "Il concerto di ieri sera è finito molto tardi.",
        "Mio fratello studia medicina all'università di Bologna.",
    ],
    "pt": [
        "O navio chegou ao porto logo depois do almoço.",
        "A minha tia mora numa casa amarela perto da praça.",
        "Amanhã vai chover durante toda a tarde.",
        "Você sabe onde fica a estação de metrô mais próxima?",
        "Os pescadores saem para o mar antes do nascer do sol.",
        "Comprei um livro antigo numa feira de rua.",
    ],
    "nl": [
        "De fiets staat al de hele week in de regen.",
        "Wij eten vanavond soep met vers brood.",
        "Het museum is op maandag altijd gesloten.",
        "Weet jij hoe laat de laatste trein vertrekt?",
        "Mijn buurman heeft een kleine boot op de gracht.",
        "In de winter schaatsen de kinderen op het meer.",
    ],
    "sv": [
        "Tåget till Göteborg går från spår fyra.",
        "Vi plockade blåbär i skogen hela eftermiddagen.",
        "Min bror arbetar på ett bageri i stan.",
        "Vet du när affären stänger på lördagar?",
        "Sjön frös till is redan i november.",
        "Hon läser en tjock bok om gamla vikingar.",
    ],
    "da": [
        "Cyklen står stadig ude i regnen ved huset.",
        "Vi spiste rugbrød og ost til frokost i går.",
        "Færgen sejler til øen hver morgen klokken syv.",
        "Ved du, hvornår biblioteket åbner på mandag?",
        "Min onkel fanger fisk fra den gamle mole.",
        "Om vinteren bliver det mørkt allerede om eftermiddagen.",
    ],
    "fi": [
        "Juna Tampereelle lähtee raiteelta viisi.",
        "Saunan jälkeen uimme kylmässä järvessä.",
        "Isoäiti leipoo pullaa joka sunnuntai.",
        "Tiedätkö, milloin kauppa sulkeutuu tänään?",
        "Metsässä kasvaa paljon mustikoita ja sieniä.",
        "Talvella lunta on usein metrin verran.",
    ],
    "cs": [
        "Vlak do Brna odjíždí z druhého nástupiště.",
        "Moje babička peče nejlepší koláče ve vesnici.",
        "Zítra půjdeme na dlouhou procházku do hor.",
        "Víte, kdy zavírá pošta v sobotu?",
        "Na náměstí hraje každý večer malá kapela.",
        "V zimě řeka zamrzne skoro úplně.",
    ],
    "ro": [
        "Trenul spre Cluj pleacă de la linia trei.",
        "Bunica mea face cele mai bune plăcinte.",
        "Mâine mergem la munte cu toată familia.",
        "Știi la ce oră se închide farmacia?",
        "Pescarii ies pe mare înainte de răsărit.",
        "Iarna, lacul din parc îngheață complet.",
    ],
    "pl": [
        "Pociąg do Krakowa odjeżdża z peronu drugiego.",
        "Moja babcia piecze najlepszy sernik na świecie.",
        "Jutro idziemy na długi spacer do lasu.",
        "Czy wiesz, o której godzinie zamykają sklep?",
        "Dzieci bawią się na podwórku do późnego wieczora.",
        "W zimie jezioro zamarza prawie całkowicie.",
    ],
}

# English sentences come from a small grammar. Each English group has its own subject,
# verbs and places, so no phrase is spoken by two groups.
_EN_WORDS = {
    "en-m1": (
        "The old fisherman",
        ["carried a heavy basket", "mended his torn nets", "rowed against the tide"],
        ["across the market square", "beside the harbour wall"],
    ),
    "en-us-f4": (
        "My younger sister",
        ["sang a cheerful song", "painted a wooden fence", "baked twelve muffins"],
        ["near the railway station", "in the sunny kitchen"],
    ),
    "en-gb-scotland-m7": (
        "A tired student",
        ["read the morning paper", "waited patiently", "lost his umbrella"],
        ["inside the crowded library", "outside the castle gate"],
    ),
    "en-029-f1": (
        "The busy doctor",
        ["fixed the broken chair", "walked slowly home", "answered every call"],
        ["under the tall palm tree", "along the sandy beach"],
    ),
}


def sentences_for(group: str, n: int) -> list[str]:
    """The `n` sentences the speaker `group` says; no phrase is shared with another group."""
    voice = ALL_VOICES[group]
    lang = voice.language.split("-")[0]
    if group in _SENTENCES:
        bank = _SENTENCES[group]
    elif lang == "en":
        subject, verbs, places = _EN_WORDS[group]
        bank = [f"{subject} {v} {p}." for v, p in itertools.product(verbs, places)]
    else:
        bank = _SENTENCES[lang]
    if n > len(bank):
        raise ValueError(f"only {len(bank)} sentences for group {group}, asked for {n}")
    return bank[:n]


def synthesize_sentence(group: str, text: str) -> tuple[np.ndarray, int]:
    """Speak `text` with the voice of speaker `group`; float32 samples and their rate."""
    from core.data.tts import synthesize

    return synthesize(text, ALL_VOICES[group])
