"""The prompts the generated dialplan plays exist for every tone and language set."""

import re
import tomllib
from pathlib import Path

import pytest

from asterisk_cube.agi.entry_config import PROMPT_LANGUAGES
from asterisk_cube.core import spoken

ROOT = Path(__file__).resolve().parents[2]
SOUNDS = ROOT / "sounds"
SETS = [f"{tone}" for tone in ("formal", "informal")] + [
    f"{lang}/{tone}" for lang in sorted(PROMPT_LANGUAGES) for tone in ("formal", "informal")
]


def played_by_the_dialplan() -> set[str]:
    text = (ROOT / "dialplan" / "inbound.conf.j2").read_text()
    return set(re.findall(r"\$\{CUBE_PROMPTS\}/([\w-]+)", text))


def test_the_dialplan_plays_prompts():
    assert {"blocked", "closed", "goodbye", "next-open"} <= played_by_the_dialplan()


@pytest.mark.parametrize("prompt_set", SETS)
def test_every_prompt_exists_in_every_set(prompt_set):
    folder = SOUNDS / prompt_set
    names = played_by_the_dialplan() | {"welcome", "please-hold", "sorry"}
    missing = [n for n in sorted(names) if not (folder / f"{n}.gsm").is_file()]
    assert not missing, f"{prompt_set}: missing {missing}: run scripts/make-sounds"
    for name in names:
        assert (folder / f"{name}.gsm").stat().st_size > 1000


def test_prompts_toml_has_a_text_for_every_file():
    table = tomllib.loads((SOUNDS / "prompts.toml").read_text())
    for lang, tones in table.items():
        shared_words = tones.get("words", {})
        for tone, prompts in tones.items():
            if tone == "words":
                continue
            folder = SOUNDS / (tone if lang == "en" else f"{lang}/{tone}")
            on_disk = {p.stem for p in folder.glob("*.gsm")}
            assert on_disk == set(prompts) - {"voice", "speed", "words"}
            words = {p.stem for p in (folder / "words").glob("*.gsm")}
            assert words == set(shared_words) | set(prompts.get("words", {}))


@pytest.mark.parametrize("tone", ["formal", "informal"])
def test_every_word_the_entry_can_say_exists(tone):
    """core/spoken.py names the words; a missing file would be silence mid-sentence."""
    assert spoken.LANGUAGES <= PROMPT_LANGUAGES
    assert set(spoken.VOCABULARY) == spoken.LANGUAGES
    for lang, names in sorted(spoken.VOCABULARY.items()):
        folder = SOUNDS / lang / tone / spoken.WORDS
        missing = [n for n in sorted(names) if not (folder / f"{n}.gsm").is_file()]
        assert not missing, f"{lang}/{tone}: missing words {missing}: run scripts/make-sounds"
