"""Text-only training sources: monolingual sentences for context prediction, translation groups for
crosslingual pulling. Only training splits are ever read; each source names what it has seen.

Context sources (``context_sentences``):

* ``multi30k``: the Multi30k task-1 *train* captions of each language (29,000 per language).
* ``rcv``: the RCV1/RCV2 *train* documents of each language (1,000 each; the test documents are the
  ``rcv`` task's and are never read). The documents carry labels; they are not used.
* ``LANG=PATH``: a user corpus, one sentence per line (UTF-8), tokenised like every other text.

Translation sources (``translation_groups``):

* ``multi30k``: each Multi30k task-1 *train* image's caption in en, de, fr and cs (one group per image).
* ``emoji``: each *train*-split emoji concept's CLDR name in every language that names it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from mmbench.errors import ConfigError, DataError
from mmbench.train.corpora import emoji_name_groups

Text = tuple[str, list[str]]  # (language, tokens)
Tokenize = Callable[[str], list[str]]

# What each source trains on, as "dataset:split" (mmbench.cards.data_overlap); user files are the user's.
CONTEXT_SEEN = {"multi30k": "multi30k:train", "rcv": "rcv:train"}
TRANSLATION_SEEN = {"multi30k": "multi30k:train", "emoji": "emoji:train"}
CONTEXT_SOURCES = ("multi30k", "rcv")
TRANSLATION_SOURCES = ("multi30k", "emoji")


def check_context_source(source: str) -> None:
    if source in CONTEXT_SOURCES:
        return
    language, _, path = source.partition("=")
    if not (language and path and language.isalpha()):
        raise ConfigError(f"context source {source!r}: expected one of {', '.join(CONTEXT_SOURCES)} or "
                          f"LANG=PATH (a file of sentences, one per line)")


def check_translation_source(source: str) -> None:
    if source not in TRANSLATION_SOURCES:
        raise ConfigError(f"translation source {source!r}: expected one of {', '.join(TRANSLATION_SOURCES)}")


def context_sentences(source: str, languages: Sequence[str], *, data_dir: Path | None,
                      tokenize: Tokenize) -> list[Text]:
    """The tokenised sentences of one context source in the chosen ``languages`` (empty: all it has)."""
    check_context_source(source)
    if source == "multi30k":
        from mmbench.data.multi30k import LANGUAGE_ORDER, load_multi30k

        chosen = [lang for lang in LANGUAGE_ORDER if not languages or lang in languages]
        if not chosen:
            return []
        rows = load_multi30k(_root(data_dir, source), task=1, split="train", languages=chosen, features=False)
        return [(lang, tokens) for lang in chosen for tokens in map(tokenize, rows[f"caption_{lang}"][:]) if tokens]
    if source == "rcv":
        from mmbench.data.rcv import load_rcv, rcv_languages

        root = _root(data_dir, source)
        chosen = [lang for lang in rcv_languages(root) if not languages or lang in languages]
        return [(lang, tokens) for lang in chosen
                for tokens in map(tokenize, load_rcv(root, lang)["train"]["text"]) if tokens]
    language, _, path = source.partition("=")
    if languages and language not in languages:
        return []
    try:
        with open(Path(path).expanduser(), encoding="utf-8") as lines:
            return [(language, tokens) for tokens in map(tokenize, lines) if tokens]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"context corpus {path}: unreadable ({exc})") from None


def translation_groups(source: str, languages: Sequence[str], *, data_dir: Path | None,
                       tokenize: Tokenize) -> list[list[Text]]:
    """Groups of texts that translate each other, each with >= 2 of the chosen ``languages``."""
    check_translation_source(source)
    if source == "multi30k":
        from mmbench.data.multi30k import LANGUAGE_ORDER, load_multi30k

        chosen = [lang for lang in LANGUAGE_ORDER if not languages or lang in languages]
        if len(chosen) < 2:
            return []
        rows = load_multi30k(_root(data_dir, source), task=1, split="train", languages=chosen, features=False)
        columns = {lang: [tokenize(c) for c in rows[f"caption_{lang}"][:]] for lang in chosen}
        groups = [[(lang, columns[lang][i]) for lang in chosen if columns[lang][i]] for i in range(len(rows))]
    else:
        groups = emoji_name_groups(languages, tokenize)
    return [group for group in groups if len(group) >= 2]


def _root(data_dir: Path | None, source: str) -> Path:
    if data_dir is None:
        raise ConfigError(f"text source {source!r} reads the data root, but none was given")
    return Path(data_dir)
