"""Language codes, scripts, and the en / hi / hinglish / other label of a call.

Whisper knows about 99 languages but not Hinglish, and on Indian trade calls it says
"hindi" for Hinglish, "english" for Hinglish, and sometimes "urdu" for Hindi. The label
therefore comes from what the detector said *and* what the transcript looks like.

Rules of `label_language`, applied in order:

1. The detected language is normalised (`normalize_language`: "english" -> "en",
   "en-US" -> "en"). Urdu counts as Hindi: spoken Hindi and Urdu are one language to
   Whisper, and calls here are Indian, so "ur" is read as "hi" (the STT caller retries
   Urdu-script transcripts with a Devanagari prompt). Probabilities are normalised the
   same way and Urdu's mass is added to Hindi's.
2. Abstention: with probabilities, en + hi mass (Urdu's included) below `min_supported_p`
   is "other", whatever was detected, with confidence 1 - that mass: weak evidence for
   every allowed label is never forced into one (a French call detected as "en" at 0.08
   is UnsupportedLanguage). A server that gives only the detected language's probability
   counts as that mass. Default `MIN_SUPPORTED_P`: midpoint of Whisper base's en + hi mass
   on the labelled set (cofid.testing.speech_set): unsupported languages at most 0.17,
   English and Hinglish at least 0.21. Without probabilities there is nothing to weigh:
   the detector's answer stands (rules 3-8).
3. No detected language: the most probable one is used; with no probabilities either,
   the script decides (Devanagari or Urdu script -> hi, Latin -> en); no text at all ->
   ("other", 0.0). A detector that names Hinglish itself (the CPU engine does, for speech
   that sounds English but does not decode as English words) gets hinglish.
4. A language other than en / hi is "other", unless probabilities are given and the en and
   hi mass combined exceeds that language's probability: then the larger of en and hi is
   used (Whisper spreads Hinglish speech over en, hi, ur and neighbours).
5. Mixed script — at least `MIXED_SCRIPT_MIN_WORDS` Devanagari words and as many Latin
   words — is hinglish, whichever of en / hi was detected.
6. Hindi detected and the transcript mostly in Latin script: hinglish (Whisper wrote
   Hindi speech in the Roman alphabet, which is how code-mixed speech comes out).
7. Hindi detected otherwise (Devanagari, Urdu script, or no text): hi.
8. English detected but the transcript mostly in Devanagari or Urdu script: hi.
9. English detected and at least `hinglish_min_hindi_words` distinct common romanised
   Hindi words (`ROMANIZED_HINDI_WORDS`) in the text: hinglish. Otherwise en.
10. Confidence: with probabilities, the label's probability mass (hinglish: en + hi, capped
   at 1; other: the detected language's probability); without probabilities the label is
   taken as the server gave it and the confidence is 1.0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

LABEL_EN = "en"
LABEL_HI = "hi"
LABEL_HINGLISH = "hinglish"
LABEL_OTHER = "other"

MIXED_SCRIPT_MIN_WORDS = 2
UNSCORED_CONFIDENCE = 1.0
# Rule 2's bar (en + hi probability mass); measured effect in the module docstring.
MIN_SUPPORTED_P = 0.19

# Whisper's language table (code -> name), the names servers such as whisper.cpp return.
WHISPER_LANGUAGES: dict[str, str] = {
    "en": "english", "zh": "chinese", "de": "german", "es": "spanish", "ru": "russian",
    "ko": "korean", "fr": "french", "ja": "japanese", "pt": "portuguese", "tr": "turkish",
    "pl": "polish", "ca": "catalan", "nl": "dutch", "ar": "arabic", "sv": "swedish",
    "it": "italian", "id": "indonesian", "hi": "hindi", "fi": "finnish", "vi": "vietnamese",
    "he": "hebrew", "uk": "ukrainian", "el": "greek", "ms": "malay", "cs": "czech",
    "ro": "romanian", "da": "danish", "hu": "hungarian", "ta": "tamil", "no": "norwegian",
    "th": "thai", "ur": "urdu", "hr": "croatian", "bg": "bulgarian", "lt": "lithuanian",
    "la": "latin", "mi": "maori", "ml": "malayalam", "cy": "welsh", "sk": "slovak",
    "te": "telugu", "fa": "persian", "lv": "latvian", "bn": "bengali", "sr": "serbian",
    "az": "azerbaijani", "sl": "slovenian", "kn": "kannada", "et": "estonian",
    "mk": "macedonian", "br": "breton", "eu": "basque", "is": "icelandic", "hy": "armenian",
    "ne": "nepali", "mn": "mongolian", "bs": "bosnian", "kk": "kazakh", "sq": "albanian",
    "sw": "swahili", "gl": "galician", "mr": "marathi", "pa": "punjabi", "si": "sinhala",
    "km": "khmer", "sn": "shona", "yo": "yoruba", "so": "somali", "af": "afrikaans",
    "oc": "occitan", "ka": "georgian", "be": "belarusian", "tg": "tajik", "sd": "sindhi",
    "gu": "gujarati", "am": "amharic", "yi": "yiddish", "lo": "lao", "uz": "uzbek",
    "fo": "faroese", "ht": "haitian creole", "ps": "pashto", "tk": "turkmen",
    "nn": "nynorsk", "mt": "maltese", "sa": "sanskrit", "lb": "luxembourgish",
    "my": "myanmar", "bo": "tibetan", "tl": "tagalog", "mg": "malagasy", "as": "assamese",
    "tt": "tatar", "haw": "hawaiian", "ln": "lingala", "ha": "hausa", "ba": "bashkir",
    "jw": "javanese", "su": "sundanese", "yue": "cantonese",
}  # fmt: skip

_ALIASES: dict[str, str] = {
    "burmese": "my", "valencian": "ca", "flemish": "nl", "haitian": "ht",
    "letzeburgesch": "lb", "pushto": "ps", "panjabi": "pa", "moldavian": "ro",
    "moldovan": "ro", "sinhalese": "si", "castilian": "es", "mandarin": "zh",
    "jv": "jw", "eng": "en", "hin": "hi", "urd": "ur", "hinglish": "hinglish",
}  # fmt: skip

_NAME_TO_CODE: dict[str, str] = {name: code for code, name in WHISPER_LANGUAGES.items()}

# Common romanised Hindi words that do not double as English words ("main", "to", "the",
# "do", "me" are left out on purpose).
_ROMANIZED_HINDI = """
    haan haanji nahi nahin kya kyun kyon kyunki aap aapka aapke aapko aapki hai hain hoga
    hogi hoge karo kar karna karenge kariye kijiye dijiye dena dedo ji theek thik accha acha
    achha achcha bhai bhaiya paisa paise rupaye lakh crore mera meri mere mujhe hum humko
    hamara hamare tum aur lekin abhi aaj kal bolo boliye batao bataiye samajh samjha chahiye
    wala wale wali matlab namaste shukriya dhanyavad bahut kuch kitna kitne kaise kaun kahan
    yeh woh mein hua hui gaya gayi raha rahe rahi tha thi liye sahi bilkul ek chaar paanch
    hazaar
"""
ROMANIZED_HINDI_WORDS: frozenset[str] = frozenset(_ROMANIZED_HINDI.split())

_DEVANAGARI = "\u0900-\u0963\u0970-\u097f\ua8e0-\ua8ff"  # danda and digits left out
_ARABIC = (
    "\u0621-\u063a\u0641-\u065f\u066e-\u06d3\u06d5-\u06ef\u06fa-\u06ff"
    "\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff"
)
_LATIN = "A-Za-z\u00c0-\u024f"
_WORD = re.compile(rf"[{_DEVANAGARI}]+|[{_ARABIC}]+|[{_LATIN}][{_LATIN}']*")
_DEVANAGARI_CHAR = re.compile(rf"[{_DEVANAGARI}]")
_ARABIC_CHAR = re.compile(rf"[{_ARABIC}]")


@dataclass(frozen=True)
class ScriptCounts:
    """How many words of a text are in each script."""

    devanagari: int
    urdu: int
    latin: int


def normalize_language(code_or_name: str | None) -> str | None:
    """A language code ("en", "hi", ...) from a code, a locale or a Whisper language name.

    Unknown values come back lower-cased (they still mean "some other language");
    None, blank or not a string (a server's JSON may hold anything) gives None.
    """
    if not isinstance(code_or_name, str):
        return None
    value = code_or_name.strip().lower().replace("_", "-")
    if not value:
        return None
    if value in WHISPER_LANGUAGES:
        return value
    if value in _NAME_TO_CODE:
        return _NAME_TO_CODE[value]
    if value in _ALIASES:
        return _ALIASES[value]
    primary = value.split("-", 1)[0]
    if primary in WHISPER_LANGUAGES:
        return primary
    return _ALIASES.get(primary, primary or None)


# What lidStatus.detectedLanguage (VARCHAR(16)) admits: a primary subtag of 2-8 lowercase
# letters, then letter subtags, at most DETECTED_CODE_MAX characters in all.
DETECTED_CODE_MAX = 16
_DETECTED_CODE = re.compile(r"[a-z]{2,8}(?:-[a-z]{1,8})*")


def detected_code(value: object) -> str | None:
    """The detector's own language, as stored beside the label (lidStatus.detectedLanguage):
    `normalize_language` of it ("French" -> "fr", "fr-FR" -> "fr"), kept only when it is a
    short language code — lowercase ASCII letters and hyphens, at most DETECTED_CODE_MAX
    characters. It comes from a model server: anything else (not a string, digits,
    punctuation, spaces, other scripts, too long) is None, never truncated or cleaned up."""
    if not isinstance(value, str) or len(value) > 4 * DETECTED_CODE_MAX:
        return None
    code = normalize_language(value)
    if code is None or len(code) > DETECTED_CODE_MAX or not _DETECTED_CODE.fullmatch(code):
        return None
    return code


def language_name(code: str) -> str:
    """Whisper's name for a code ("hi" -> "hindi"); unknown codes come back as given."""
    return WHISPER_LANGUAGES.get(code, code)


def has_urdu_script(text: str) -> bool:
    """Whether `text` holds any Arabic-script (Urdu) letter."""
    return _ARABIC_CHAR.search(text) is not None


def has_devanagari(text: str) -> bool:
    """Whether `text` holds any Devanagari letter."""
    return _DEVANAGARI_CHAR.search(text) is not None


def script_counts(text: str) -> ScriptCounts:
    """How many of `text`'s words are Devanagari, Urdu (Arabic script) and Latin."""
    devanagari = urdu = latin = 0
    for word in _WORD.findall(text):
        if _DEVANAGARI_CHAR.match(word):
            devanagari += 1
        elif _ARABIC_CHAR.match(word):
            urdu += 1
        else:
            latin += 1
    return ScriptCounts(devanagari=devanagari, urdu=urdu, latin=latin)


def romanized_hindi_words(text: str) -> set[str]:
    """The distinct words of `ROMANIZED_HINDI_WORDS` found in `text` (case-insensitive)."""
    words = {w.lower().strip("'") for w in _WORD.findall(text)}
    return words & ROMANIZED_HINDI_WORDS


def _normalized_probabilities(probabilities: Mapping[str, float] | None) -> dict[str, float]:
    """Probabilities by normalised code, Urdu's mass added to Hindi's."""
    merged: dict[str, float] = {}
    for key, value in (probabilities or {}).items():
        code = normalize_language(key)
        if code is None:
            continue
        if code == "ur":
            code = LABEL_HI
        merged[code] = merged.get(code, 0.0) + float(value)
    return merged


def _clamp(value: float) -> float:
    """`value` clamped to [0, 1]."""
    return max(0.0, min(1.0, value))


def label_language(
    detected: str | None,
    probabilities: Mapping[str, float] | None,
    text: str,
    *,
    hinglish_min_hindi_words: int = 2,
    min_supported_p: float = MIN_SUPPORTED_P,
) -> tuple[str, float]:
    """The call's label ("en", "hi", "hinglish" or "other") and a confidence in [0, 1]."""
    probs = _normalized_probabilities(probabilities)
    counts = script_counts(text)
    indic_words = counts.devanagari + counts.urdu

    p_en = probs.get(LABEL_EN, 0.0)
    p_hi = probs.get(LABEL_HI, 0.0)
    if probs and p_en + p_hi < min_supported_p:
        return LABEL_OTHER, _clamp(1.0 - p_en - p_hi)

    lang = normalize_language(detected)
    if lang == "ur":
        lang = LABEL_HI
    if lang == LABEL_HINGLISH:
        return LABEL_HINGLISH, _clamp(p_en + p_hi) if probs else UNSCORED_CONFIDENCE
    if lang is None and probs:
        lang = max(probs, key=probs.__getitem__)
    if lang is None:
        if indic_words == 0 and counts.latin == 0:
            return LABEL_OTHER, 0.0
        lang = LABEL_HI if indic_words > counts.latin else LABEL_EN

    if lang not in (LABEL_EN, LABEL_HI):
        p_lang = probs.get(lang, 0.0)
        if probs and p_en + p_hi > p_lang:
            lang = LABEL_EN if p_en >= p_hi else LABEL_HI
        else:
            return LABEL_OTHER, _clamp(p_lang) if probs else UNSCORED_CONFIDENCE

    mixed = counts.devanagari >= MIXED_SCRIPT_MIN_WORDS and counts.latin >= MIXED_SCRIPT_MIN_WORDS
    if mixed:
        label = LABEL_HINGLISH
    elif lang == LABEL_HI:
        label = LABEL_HINGLISH if counts.latin > indic_words else LABEL_HI
    elif indic_words > counts.latin:
        label = LABEL_HI
    elif len(romanized_hindi_words(text)) >= hinglish_min_hindi_words:
        label = LABEL_HINGLISH
    else:
        label = LABEL_EN

    if not probs:
        return label, UNSCORED_CONFIDENCE
    mass = {LABEL_EN: p_en, LABEL_HI: p_hi, LABEL_HINGLISH: p_en + p_hi}[label]
    return label, _clamp(mass)
