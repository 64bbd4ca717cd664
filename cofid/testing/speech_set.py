"""A labelled speech set for language identification, synthesized with espeak-ng.

Each clip is a short trade-call script spoken by an espeak-ng voice and labelled with the
call label cofi must give it: ``en`` (several accents), ``hi``, ``hinglish`` (romanized
code-mixed Hindi read by an English voice) or ``other`` (a language cofi does not audit).
Clips vary over the conditions a recorder produces: 8 kHz and 16 kHz, WAV / FLAC / MP3,
clean and with noise at 15 dB SNR, short (one sentence, ~4-7 s) and long (the whole
script, ~15-30 s). Every clip is deterministic: the noise is seeded from the clip's name.

Urdu is not in the set: spoken Hindi and Urdu are one language to an acoustic model
(Whisper writes Hindi speech in Urdu script now and then), and cofi reads "ur" as "hi"
(cofid.domain.language, rule 1). An Urdu call is therefore audited as Hindi, by design.

`HINGLISH_TEXTS` are code-mixed transcripts (romanized and mixed-script) beside English,
Hindi and Indian-English texts, each with the label the text rule must give, for
measuring `label_language`'s hinglish rule without any model.

    python -m cofid.testing.speech_set DIR [--full]   # writes the clips, prints the manifest
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from cofid.demo.sample_batch import synthesize

SNR_DB = 15.0
_FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "mp3": ("MP3", None)}
_GAP_S = 0.4

# (spoken language, espeak voices, call label, script sentences). The first sentence is the
# short clip; all of them, in order, the long one.
_SCRIPTS: tuple[tuple[str, tuple[str, ...], str, tuple[str, ...]], ...] = (
    ("en", ("en-us", "en-gb", "en-gb-scotland", "en-029+f2"), "en", (
        "Good morning. This call is being recorded for quality and compliance purposes.",
        "I would like to buy one hundred shares of Infosys at fifteen hundred rupees.",
        "Let me read back your order: buy one hundred shares of Infosys at fifteen hundred "
        "rupees per share, limit order, for today. Do you confirm?",
        "Yes, I confirm. Thank you, your order has been placed.",
    )),
    ("hi", ("hi", "hi+f2"), "hi", (
        "नमस्ते, यह कॉल गुणवत्ता के लिए रिकॉर्ड की जा रही है।",
        "मुझे रिलायंस के बीस शेयर खरीदने हैं, दो हज़ार चार सौ रुपये पर।",
        "आपका ऑर्डर है, रिलायंस के बीस शेयर, दो हज़ार चार सौ रुपये प्रति शेयर पर खरीदना। "
        "क्या आप पुष्टि करते हैं?",
        "हाँ, मैं पुष्टि करता हूँ। धन्यवाद, आपका ऑर्डर लगा दिया गया है।",
    )),
    ("hinglish", ("en-us+m3", "en-gb+f2"), "hinglish", (
        "Namaste sir, yeh call quality ke liye record ho rahi hai.",
        "Mujhe Wipro ke teen sau shares buy karne hain, char sau pachaas rupaye pe.",
        "Theek hai sir, Wipro ke teen sau shares, char sau pachaas rupaye pe buy karna hai. "
        "Kya aap confirm karte hain?",
        "Haan ji, main confirm karta hoon. Bahut shukriya.",
    )),
    ("fr", ("fr-fr",), "other", (
        "Bonjour. Cet appel est enregistré pour des raisons de qualité.",
        "Je voudrais acheter cent actions de Renault au prix de cinquante euros.",
        "Je répète votre ordre: achat de cent actions Renault à cinquante euros. "
        "Vous confirmez?",
        "Oui, je confirme. Merci, votre ordre est passé.",
    )),
    ("de", ("de",), "other", (
        "Guten Tag. Dieses Gespräch wird zu Qualitätszwecken aufgezeichnet.",
        "Ich möchte hundert Aktien von Siemens zum Preis von zweihundert Euro kaufen.",
        "Ich wiederhole: hundert Aktien Siemens zu zweihundert Euro. Bestätigen Sie den "
        "Auftrag?",
        "Ja, ich bestätige. Danke, Ihr Auftrag wurde aufgegeben.",
    )),
    ("es", ("es",), "other", (
        "Buenos días. Esta llamada se graba por motivos de calidad.",
        "Quiero comprar cien acciones de Telefónica a cuatro euros cada una.",
        "Le repito su orden: compra de cien acciones de Telefónica a cuatro euros. "
        "¿Lo confirma?",
        "Sí, lo confirmo. Gracias, su orden ha sido enviada.",
    )),
    ("pt", ("pt-br",), "other", (
        "Bom dia. Esta ligação está sendo gravada para fins de qualidade.",
        "Eu quero comprar cem ações da Petrobras a trinta reais cada.",
        "Vou repetir a sua ordem: compra de cem ações da Petrobras a trinta reais. "
        "O senhor confirma?",
        "Sim, eu confirmo. Obrigado, a sua ordem foi enviada.",
    )),
    ("it", ("it",), "other", (
        "Buongiorno. Questa chiamata viene registrata per motivi di qualità.",
        "Vorrei comprare cento azioni di Enel a sei euro ciascuna.",
        "Le ripeto l'ordine: acquisto di cento azioni Enel a sei euro. Conferma?",
        "Sì, confermo. Grazie, il suo ordine è stato inviato.",
    )),
    ("ta", ("ta",), "other", (
        "வணக்கம், இந்த அழைப்பு தரத்திற்காக பதிவு செய்யப்படுகிறது.",
        "எனக்கு இன்ஃபோசிஸ் நிறுவனத்தின் நூறு பங்குகள் வாங்க வேண்டும்.",
        "உங்கள் ஆர்டர்: நூறு பங்குகள், ஒவ்வொன்றும் ஆயிரத்து ஐநூறு ரூபாய். நீங்கள் உறுதி "
        "செய்கிறீர்களா?",
        "ஆம், நான் உறுதி செய்கிறேன். நன்றி.",
    )),
    ("bn", ("bn",), "other", (
        "নমস্কার, এই কলটি মানের জন্য রেকর্ড করা হচ্ছে।",
        "আমি ইনফোসিসের একশোটি শেয়ার কিনতে চাই, পনেরোশো টাকায়।",
        "আপনার অর্ডার: একশোটি শেয়ার, প্রতিটি পনেরোশো টাকা। আপনি কি নিশ্চিত করছেন?",
        "হ্যাঁ, আমি নিশ্চিত করছি। ধন্যবাদ।",
    )),
    ("mr", ("mr",), "other", (
        "नमस्कार, हा कॉल गुणवत्तेसाठी रेकॉर्ड केला जात आहे.",
        "मला इन्फोसिसचे शंभर शेअर्स पंधराशे रुपयांना विकत घ्यायचे आहेत.",
        "तुमची ऑर्डर: शंभर शेअर्स, प्रत्येकी पंधराशे रुपये. तुम्ही याची खात्री करता का?",
        "होय, मी खात्री करतो. धन्यवाद, तुमची ऑर्डर दिली गेली आहे.",
    )),
    ("gu", ("gu",), "other", (
        "નમસ્તે, આ કૉલ ગુણવત્તા માટે રેકોર્ડ કરવામાં આવી રહ્યો છે.",
        "મારે ઇન્ફોસિસના સો શેર પંદરસો રૂપિયામાં ખરીદવા છે.",
        "તમારો ઓર્ડર: સો શેર, દરેક પંદરસો રૂપિયા. શું તમે પુષ્ટિ કરો છો?",
        "હા, હું પુષ્ટિ કરું છું. આભાર.",
    )),
    ("te", ("te",), "other", (
        "నమస్కారం, ఈ కాల్ నాణ్యత కోసం రికార్డ్ చేయబడుతోంది.",
        "నేను ఇన్ఫోసిస్ యొక్క వంద షేర్లు కొనాలనుకుంటున్నాను.",
        "మీ ఆర్డర్: వంద షేర్లు, ఒక్కొక్కటి పదిహేను వందల రూపాయలు. మీరు నిర్ధారిస్తారా?",
        "అవును, నేను నిర్ధారిస్తున్నాను. ధన్యవాదాలు.",
    )),
    ("kn", ("kn",), "other", (
        "ನಮಸ್ಕಾರ, ಈ ಕರೆಯನ್ನು ಗುಣಮಟ್ಟಕ್ಕಾಗಿ ರೆಕಾರ್ಡ್ ಮಾಡಲಾಗುತ್ತಿದೆ.",
        "ನಾನು ಇನ್ಫೋಸಿಸ್‌ನ ನೂರು ಷೇರುಗಳನ್ನು ಖರೀದಿಸಲು ಬಯಸುತ್ತೇನೆ.",
        "ನಿಮ್ಮ ಆರ್ಡರ್: ನೂರು ಷೇರುಗಳು, ಪ್ರತಿಯೊಂದಕ್ಕೆ ಹದಿನೈದು ನೂರು ರೂಪಾಯಿ. ನೀವು ಖಚಿತಪಡಿಸುತ್ತೀರಾ?",
        "ಹೌದು, ನಾನು ಖಚಿತಪಡಿಸುತ್ತೇನೆ. ಧನ್ಯವಾದಗಳು.",
    )),
    ("ml", ("ml",), "other", (
        "നമസ്കാരം, ഈ കോൾ ഗുണനിലവാരത്തിനായി റെക്കോർഡ് ചെയ്യുന്നു.",
        "എനിക്ക് ഇൻഫോസിസിന്റെ നൂറ് ഓഹരികൾ വാങ്ങണം.",
        "നിങ്ങളുടെ ഓർഡർ: നൂറ് ഓഹരികൾ, ഓരോന്നിനും ആയിരത്തി അഞ്ഞൂറ് രൂപ. നിങ്ങൾ സ്ഥിരീകരിക്കുന്നുണ്ടോ?",
        "അതെ, ഞാൻ സ്ഥിരീകരിക്കുന്നു. നന്ദി.",
    )),
    ("pa", ("pa",), "other", (
        "ਸਤ ਸ੍ਰੀ ਅਕਾਲ, ਇਹ ਕਾਲ ਗੁਣਵੱਤਾ ਲਈ ਰਿਕਾਰਡ ਕੀਤੀ ਜਾ ਰਹੀ ਹੈ।",
        "ਮੈਂ ਇਨਫੋਸਿਸ ਦੇ ਸੌ ਸ਼ੇਅਰ ਪੰਦਰਾਂ ਸੌ ਰੁਪਏ ਵਿੱਚ ਖਰੀਦਣਾ ਚਾਹੁੰਦਾ ਹਾਂ।",
        "ਤੁਹਾਡਾ ਆਰਡਰ: ਸੌ ਸ਼ੇਅਰ, ਹਰ ਇੱਕ ਪੰਦਰਾਂ ਸੌ ਰੁਪਏ। ਕੀ ਤੁਸੀਂ ਪੁਸ਼ਟੀ ਕਰਦੇ ਹੋ?",
        "ਹਾਂ ਜੀ, ਮੈਂ ਪੁਸ਼ਟੀ ਕਰਦਾ ਹਾਂ। ਧੰਨਵਾਦ।",
    )),
    ("ne", ("ne",), "other", (
        "नमस्ते, यो कल गुणस्तरको लागि रेकर्ड गरिँदैछ।",
        "मलाई इन्फोसिसको एक सय सेयर पन्ध्र सय रुपैयाँमा किन्नु छ।",
        "तपाईंको अर्डर: एक सय सेयर, प्रत्येक पन्ध्र सय रुपैयाँ। के तपाईं पुष्टि गर्नुहुन्छ?",
        "हजुर, म पुष्टि गर्छु। धन्यवाद।",
    )),
)  # fmt: skip

# Conditions each voice is rendered under: (length, sample rate, noisy). Formats rotate
# over the clips so every language gets several of WAV, FLAC and MP3.
_CONDITIONS: tuple[tuple[str, int, bool], ...] = (
    ("short", 8000, False),
    ("long", 16000, True),
    ("short", 16000, True),
    ("long", 8000, False),
)
_FORMAT_ORDER = ("wav", "flac", "mp3")

# The test suite's clips: a handful of names from the full set, chosen to cover en (two
# accents), hi, and four unsupported languages across both rates and all three formats,
# each well clear of the LID's thresholds (bench/lid.py's evidence), so that another CPU's
# slightly different probabilities cannot flip them.
SMALL_SET = (
    "en-us_short_8k_clean.wav",
    "en-gb_long_16k_noisy.mp3",
    "hi-f2_short_8k_clean.mp3",
    "fr-fr_short_8k_clean.mp3",
    "ta_short_16k_noisy.wav",
    "mr_short_8k_clean.wav",
    "es_short_16k_noisy.wav",
)


@dataclass(frozen=True)
class SpeechClip:
    """One labelled clip: what is said, by which voice, and how it is recorded."""

    name: str
    label: str  # the call label cofi must give: en / hi / hinglish / other
    language: str  # the spoken language (ISO 639-1, or "hinglish")
    voice: str
    text: str
    sample_rate: int
    fmt: str
    noisy: bool
    length: str


def _voice_slug(voice: str) -> str:
    """A file-name-safe form of an espeak voice name ('en-029+f2' -> 'en-029-f2')."""
    return voice.replace("+", "-")


def speech_clips() -> list[SpeechClip]:
    """Every clip of the full set, in a fixed order."""
    clips: list[SpeechClip] = []
    rotation = 0
    for language, voices, label, sentences in _SCRIPTS:
        for voice in voices:
            for length, sr, noisy in _CONDITIONS:
                fmt = _FORMAT_ORDER[rotation % len(_FORMAT_ORDER)]
                rotation += 1
                text = sentences[0] if length == "short" else " ".join(sentences)
                name = (
                    f"{_voice_slug(voice)}_{length}_{sr // 1000}k_"
                    f"{'noisy' if noisy else 'clean'}.{fmt}"
                )
                clips.append(SpeechClip(name, label, language, voice, text, sr, fmt, noisy, length))
    return clips


def small_clips() -> list[SpeechClip]:
    """The handful of clips the test suite runs (`SMALL_SET`)."""
    by_name = {clip.name: clip for clip in speech_clips()}
    return [by_name[name] for name in SMALL_SET]


def _seed_of(name: str) -> int:
    """A stable per-clip seed (Python's hash() changes between processes)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")


def add_noise(samples: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White noise at `snr_db` below the speech's RMS (speech frames only, not pauses)."""
    voiced = samples[np.abs(samples) > 0.01]
    rms = float(np.sqrt(np.mean(voiced**2))) if voiced.size else 0.0
    noise_rms = rms / (10 ** (snr_db / 20))
    return (samples + rng.normal(0.0, noise_rms, samples.shape)).astype(np.float32)


def render_clip(clip: SpeechClip) -> np.ndarray:
    """The clip's samples at its sample rate (float32, peak <= 0.95)."""
    pieces = [np.zeros(int(0.3 * clip.sample_rate), np.float32)]
    sentences = [clip.text] if clip.length == "short" else _split_sentences(clip)
    for sentence in sentences:
        pieces += [
            synthesize(sentence, clip.voice, clip.sample_rate),
            np.zeros(int(_GAP_S * clip.sample_rate), np.float32),
        ]
    samples = np.concatenate(pieces)
    if clip.noisy:
        samples = add_noise(samples, SNR_DB, np.random.default_rng(_seed_of(clip.name)))
    peak = float(np.max(np.abs(samples)))
    if peak > 0.95:
        samples = samples * (0.95 / peak)
    return samples.astype(np.float32)


def _split_sentences(clip: SpeechClip) -> list[str]:
    """The long clip's script sentences (spoken with pauses between them, like turns)."""
    for language, _voices, _label, sentences in _SCRIPTS:
        if language == clip.language:
            return list(sentences)
    raise KeyError(clip.language)


def write_clip(clip: SpeechClip, directory: Path) -> Path:
    """Render `clip` into `directory` (skipped when the file is already there)."""
    path = Path(directory) / clip.name
    if path.is_file() and path.stat().st_size > 0:
        return path
    fmt, subtype = _FORMATS[clip.fmt]
    tmp = path.with_name(f".{path.name}.tmp")
    samples = np.clip(render_clip(clip), -1.0, 1.0)
    sf.write(str(tmp), samples, clip.sample_rate, format=fmt, subtype=subtype)
    tmp.replace(path)
    return path


def write_speech_set(directory: Path, clips: list[SpeechClip] | None = None) -> dict[str, dict]:
    """Write `clips` (default: the full set) into `directory`; return the manifest by name."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, dict] = {}
    for clip in speech_clips() if clips is None else clips:
        path = write_clip(clip, directory)
        manifest[clip.name] = {**asdict(clip), "duration_s": round(sf.info(str(path)).duration, 3)}
    return manifest


# Transcripts for the hinglish text rule: (text, the label `label_language` must give when
# the detector said "en" / "hi"). Romanized code-mixed, mixed-script, and the look-alikes
# the rule must leave alone: English with Indian names and the odd "ji", Devanagari Hindi.
HINGLISH_TEXTS: tuple[tuple[str, str, str], ...] = (
    ("en", "Namaste sir, yeh call quality ke liye record ho rahi hai.", "hinglish"),
    ("en", "Mujhe Wipro ke teen sau shares buy karne hain, four fifty pe.", "hinglish"),
    ("en", "Theek hai sir, aapka order place ho gaya hai.", "hinglish"),
    ("en", "Haan ji, main confirm karta hoon, bilkul sahi hai.", "hinglish"),
    ("en", "Kya aap Reliance ke bees shares sell karna chahte hain?", "hinglish"),
    ("en", "Sir abhi market bahut volatile hai, kal buy kariye.", "hinglish"),
    ("en", "Aapka margin pachees hazaar hai, kuch aur chahiye?", "hinglish"),
    ("hi", "Mera client code C 1 0 0 4 hai, please check kijiye.", "hinglish"),
    ("hi", "Haan bhai, HDFC Bank ke do sau shares lena hai.", "hinglish"),
    ("hi", "मुझे Infosys के 100 shares buy करने हैं at 1500 rupees.", "hinglish"),
    ("en", "Sir आपका order confirm हो गया है, thank you.", "hinglish"),
    ("hi", "Limit order लगा दीजिए, price fifteen hundred रखिए।", "hinglish"),
    ("en", "Good morning. This call is being recorded for quality purposes.", "en"),
    ("en", "Am I speaking with Rahul Sharma? Please confirm your client code.", "en"),
    ("en", "I would like to buy one hundred shares of Infosys at 1500 rupees.", "en"),
    ("en", "Yes ji, please confirm the order for Suresh Patel.", "en"),
    ("en", "Your available margin is twenty five thousand rupees.", "en"),
    ("en", "Thank you, Mr. Gupta. Your order for Tata Motors has been placed.", "en"),
    ("hi", "नमस्ते, यह कॉल गुणवत्ता के लिए रिकॉर्ड की जा रही है।", "hi"),
    ("hi", "मुझे रिलायंस के बीस शेयर खरीदने हैं, दो हज़ार चार सौ रुपये पर।", "hi"),
    ("hi", "हाँ, मैं पुष्टि करता हूँ। धन्यवाद।", "hi"),
    ("en", "आपका ऑर्डर लगा दिया गया है।", "hi"),
)


def main(argv: list[str] | None = None) -> int:
    """Command line: write the small set (or --full) into DIR and print the manifest."""
    parser = argparse.ArgumentParser(
        prog="python -m cofid.testing.speech_set",
        description="Write the labelled LID speech set (espeak-ng) into DIR.",
    )
    parser.add_argument("directory", type=Path)
    parser.add_argument("--full", action="store_true", help="every clip, not the test handful")
    args = parser.parse_args(argv)
    clips = speech_clips() if args.full else small_clips()
    print(json.dumps(write_speech_set(args.directory, clips), indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
