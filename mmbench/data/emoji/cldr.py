"""Readers for the Unicode text sources of the emoji dataset (build time only).

``emoji-test.txt`` (Debian ``unicode-data``) gives every emoji's fully-qualified code points, group and
subgroup; CLDR ``common/annotations*/<locale>.xml`` (Debian ``unicode-cldr-core``) gives names and
keywords per locale. Both are keyed here by the sequence without U+FE0F, which is how CLDR spells them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from mmbench.errors import DataError

VARIATION_SELECTOR_16 = "\ufe0f"
SKIN_TONE_MODIFIERS = frozenset(chr(cp) for cp in range(0x1F3FB, 0x1F400))
# CLDR marks its confidence in each value; "contributed" and better is what CLDR itself ships to ICU.
ACCEPTED_DRAFT_LEVELS = frozenset({"approved", "contributed"})
INHERITANCE_MARKER = "↑↑↑"


@dataclass(frozen=True)
class EmojiEntry:
    """One fully-qualified emoji from ``emoji-test.txt``."""

    sequence: str  # fully-qualified, with U+FE0F where Unicode wants it
    group: str
    subgroup: str

    @property
    def key(self) -> str:
        return cldr_key(self.sequence)


@dataclass(frozen=True)
class Annotation:
    name: str
    keywords: tuple[str, ...]


def cldr_key(sequence: str) -> str:
    """The sequence as CLDR keys it: without U+FE0F."""
    return sequence.replace(VARIATION_SELECTOR_16, "")


def concept_id(sequence: str) -> str:
    """Lower-case hex code points without U+FE0F joined by ``-``, e.g. ``1f469-200d-1f52c``."""
    return "-".join(f"{ord(ch):x}" for ch in cldr_key(sequence))


def has_skin_tone(sequence: str) -> bool:
    return any(ch in SKIN_TONE_MODIFIERS for ch in sequence)


def read_emoji_test(path: Path) -> dict[str, EmojiEntry]:
    """Fully-qualified and component emoji of ``emoji-test.txt``, keyed by :func:`cldr_key`."""
    entries: dict[str, EmojiEntry] = {}
    group = subgroup = ""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read emoji-test.txt ({exc})") from exc
    for line_no, line in enumerate(lines, start=1):
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
        elif line.strip() and not line.startswith("#"):
            fields = line.split("#", 1)[0].split(";")
            if len(fields) != 2 or not group or not subgroup:
                raise DataError(f"{path}:{line_no}: malformed emoji-test line")
            status = fields[1].strip()
            if status not in ("fully-qualified", "component"):
                continue
            try:
                sequence = "".join(chr(int(cp, 16)) for cp in fields[0].split())
            except ValueError as exc:
                raise DataError(f"{path}:{line_no}: bad code point ({exc})") from exc
            entries[cldr_key(sequence)] = EmojiEntry(sequence, group, subgroup)
    if not entries:
        raise DataError(f"{path}: no emoji found")
    return entries


def read_annotations(
    annotations_root: Path, locale: str, wanted: Collection[str] | None = None
) -> dict[str, Annotation]:
    """Names and keywords a locale's OWN files give (no CLDR inheritance), keyed by CLDR key.

    Only entries that have a name (``type="tts"``) at an accepted draft level are returned; keywords
    below the accepted level are dropped (an empty tuple). ``wanted`` limits the keys returned.
    """
    names: dict[str, str] = {}
    keywords: dict[str, tuple[str, ...]] = {}
    for folder in ("annotations", "annotationsDerived"):
        path = annotations_root / folder / f"{locale}.xml"
        if not path.is_file():
            continue
        try:
            root = ET.parse(path).getroot()
        except (ET.ParseError, OSError) as exc:
            raise DataError(f"{path}: cannot parse CLDR annotations ({exc})") from exc
        for element in root.iter("annotation"):
            cp, text = element.get("cp"), (element.text or "").strip()
            if cp is None:
                raise DataError(f"{path}: <annotation> without cp attribute")
            if wanted is not None and cp not in wanted:
                continue
            if not text or text == INHERITANCE_MARKER:
                continue
            if element.get("draft", "approved") not in ACCEPTED_DRAFT_LEVELS:
                continue
            if element.get("type") == "tts":
                names[cp] = text
            else:
                keywords[cp] = tuple(k.strip() for k in text.split("|") if k.strip())
    return {key: Annotation(name, keywords.get(key, ())) for key, name in names.items()}


def annotation_locales(annotations_root: Path) -> list[str]:
    """Every locale with an ``annotations/`` file, sorted (``root`` excluded)."""
    folder = annotations_root / "annotations"
    if not folder.is_dir():
        raise DataError(f"{folder}: CLDR annotations folder not found (install unicode-cldr-core)")
    return sorted(p.stem for p in folder.glob("*.xml") if p.stem != "root")
