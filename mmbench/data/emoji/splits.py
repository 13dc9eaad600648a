"""Deterministic train/val/test split of emoji concepts (pure functions, no dependencies).

A split is decided per *family* of concepts, so that gendered variants of one emoji (``person
running``, ``man running``, ``woman running``; ``technologist``/``man technologist``/...) never straddle
splits; families are ordered by a seeded hash inside each CLDR group and cut by cumulative concept
count, which stratifies the split by group.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

SPLIT_SEED = "mmbench-emoji-v1"
SPLIT_FRACTIONS = (("train", 0.7), ("val", 0.1), ("test", 0.2))

_ZWJ = "\u200d"
_GENDER_SIGNS = {"\u2640", "\u2642"}
# Gendered base characters -> their gender-neutral counterpart.
_NEUTRAL = {
    "\U0001f468": "\U0001f9d1",  # man -> person
    "\U0001f469": "\U0001f9d1",  # woman -> person
    "\U0001f466": "\U0001f9d2",  # boy -> child
    "\U0001f467": "\U0001f9d2",  # girl -> child
    "\U0001f474": "\U0001f9d3",  # old man -> older person
    "\U0001f475": "\U0001f9d3",  # old woman -> older person
    "\U0001f57a": "\U0001f483",  # man dancing -> woman dancing (there is no neutral one)
    "\U0001f934": "\U0001fac5",  # prince -> person with crown
    "\U0001f478": "\U0001fac5",  # princess -> person with crown
    "\U0001f930": "\U0001fac4",  # pregnant woman -> pregnant person
    "\U0001fac3": "\U0001fac4",  # pregnant man -> pregnant person
    "\U0001f936": "\U0001f385",  # Mrs. Claus -> Santa Claus
}
# Whole sequences that are gendered forms of another single emoji (after the mapping above).
_FAMILY_ALIASES = {
    "\U0001f9d1\u200d\U0001f384": "\U0001f385",  # mx claus
    "\U0001f46b": "\U0001f9d1\u200d\U0001f91d\u200d\U0001f9d1",  # woman and man holding hands
    "\U0001f46c": "\U0001f9d1\u200d\U0001f91d\u200d\U0001f9d1",  # men holding hands
    "\U0001f46d": "\U0001f9d1\u200d\U0001f91d\u200d\U0001f9d1",  # women holding hands
    "\U0001f9d1\u200d\u2764\u200d\U0001f48b\u200d\U0001f9d1": "\U0001f48f",  # kiss: gendered pairs
    "\U0001f9d1\u200d\u2764\u200d\U0001f9d1": "\U0001f491",  # couple with heart: gendered pairs
}


def family_key(key: str) -> str:
    """The gender-neutral form of a CLDR key (no U+FE0F): drops gender signs, maps gendered people."""
    parts = [part for part in key.replace("\ufe0f", "").split(_ZWJ) if part not in _GENDER_SIGNS]
    neutral = _ZWJ.join("".join(_NEUTRAL.get(ch, ch) for ch in part) for part in parts)
    return _FAMILY_ALIASES.get(neutral, neutral)


def _rank(family: str, seed: str) -> str:
    return hashlib.sha256(f"{seed}\0{family}".encode()).hexdigest()


def assign_splits(
    groups: Mapping[str, str],
    *,
    seed: str = SPLIT_SEED,
    fractions: tuple[tuple[str, float], ...] = SPLIT_FRACTIONS,
) -> dict[str, str]:
    """Map each CLDR key to a split name.

    ``groups`` maps key -> CLDR group. Within a group, families in hash order fill the splits in
    turn by cumulative concept count; a family whose members sit in different groups goes by the
    group of its smallest key.
    """
    if abs(sum(f for _, f in fractions) - 1.0) > 1e-9:
        raise ValueError(f"split fractions must sum to 1, got {fractions}")
    families: dict[str, list[str]] = {}
    for key in sorted(groups):
        families.setdefault(family_key(key), []).append(key)
    by_group: dict[str, list[str]] = {}
    for family, members in families.items():
        by_group.setdefault(groups[members[0]], []).append(family)

    splits: dict[str, str] = {}
    for group in sorted(by_group):
        ordered = sorted(by_group[group], key=lambda fam: _rank(fam, seed))
        total = sum(len(families[fam]) for fam in ordered)
        done = 0
        for family in ordered:
            position = done / total  # where this family starts in the group's [0, 1) range
            cumulative = 0.0
            name = fractions[-1][0]
            for split_name, fraction in fractions:
                cumulative += fraction
                if position < cumulative - 1e-12:
                    name = split_name
                    break
            for key in families[family]:
                splits[key] = name
            done += len(families[family])
    return splits
