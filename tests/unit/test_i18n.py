"""Translations: the catalogs are complete and compiled; language negotiation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from asterisk_cube.acd import contract
from asterisk_cube.web import i18n

ROOT = Path(__file__).resolve().parents[2]
LOCALE = ROOT / "asterisk_cube" / "locale"


def _po(lang: str):
    with (LOCALE / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale=lang)


def test_every_string_in_the_code_is_translated_to_nb(tmp_path):
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "-q", "extract", "-F",
         str(ROOT / "babel.cfg"), "-k", "N_", "-o", str(pot), "."],
        cwd=ROOT,
        check=True,
    )  # fmt: skip
    with pot.open("rb") as fh:
        extracted = {m.id for m in read_po(fh) if m.id}
    nb = _po("nb")
    translated = {m.id: m for m in nb if m.id}
    missing = sorted(str(x) for x in extracted - set(translated))
    assert not missing, f"run pybabel extract/update (docs/i18n.md): {missing}"
    empty = sorted(str(k) for k, m in translated.items() if k in extracted and not m.string)
    assert not empty, f"untranslated in nb: {empty}"
    fuzzy = sorted(str(k) for k, m in translated.items() if k in extracted and m.fuzzy)
    assert not fuzzy, f"fuzzy in nb: {fuzzy}"
    with (LOCALE / "messages.pot").open("rb") as fh:
        committed = {m.id for m in read_po(fh) if m.id}
    assert extracted <= committed, "messages.pot is out of date: run pybabel extract"


def test_compiled_catalog_matches_the_po():
    with (LOCALE / "nb" / "LC_MESSAGES" / "messages.mo").open("rb") as fh:
        compiled = {m.id: m.string for m in read_mo(fh) if m.id}
    source = {m.id: m.string for m in _po("nb") if m.id and m.string and not m.fuzzy}
    assert compiled == source, "run pybabel compile -d asterisk_cube/locale"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("nb-NO,nb;q=0.9,en;q=0.8", "nb"),
        ("no", "nb"),
        ("nn-NO", "nb"),
        ("de-DE,de;q=0.9,en;q=0.5", "en"),
        ("en;q=0.3,nb;q=0.9", "nb"),
        ("fr, de", None),
        ("nb;q=0", None),
        ("nb;q=abc,en", "en"),
        ("", None),
        (None, None),
    ],
)
def test_negotiate(header, expected):
    assert i18n.negotiate(header) == expected


def test_gettext_follows_the_language_in_use():
    assert i18n.gettext("Accept") == "Accept"
    with i18n.use_language("nb"):
        assert i18n.gettext("Accept") == "Besvar"
        assert i18n.reason_message(contract.REGISTRATION_REQUIRED).startswith("Registrer")
        assert i18n.pause_label("lunch", "Lunch") == "Lunsj"
        assert i18n.pause_label("smoke", "Røykepause") == "Røykepause"
    with i18n.use_language("xx"):
        assert i18n.gettext("Accept") == "Accept"


def test_every_refusal_reason_of_the_contract_has_a_message():
    for reason in (
        contract.NOT_FOUND,
        contract.NOT_PERMITTED,
        contract.ILLEGAL_STATE,
        contract.REGISTRATION_REQUIRED,
        contract.INVALID,
    ):
        assert reason in i18n.REASONS


def test_js_catalog_holds_the_script_strings():
    catalog = i18n.js_catalog("nb")
    assert catalog["Incoming call"] == "Innkommende samtale"
    assert catalog["Accept within %(left)s"] == "Besvar innen %(left)s"
    assert i18n.js_catalog("en") == {}
