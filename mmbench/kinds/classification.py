"""Document classification from word vectors (Klementiev, Titov & Bhattarai 2012 setting).

A document is the idf-weighted average of its words' vectors (``metrics.classification.document_vectors``);
an averaged perceptron is trained on the train split of one language and scored on the test split.

* ``languages = [lang]``: monolingual, train and test in ``lang``.
* ``languages = [train_lang, test_lang]``: crosslingual transfer (the classic en->de and de->en runs):
  the classifier never sees a labelled ``test_lang`` document.

Each language's idf comes from that language's *train* split (document frequencies only, no labels),
because Klementiev's larger idf tables are not distributed; words missing from the idf table are
skipped, as in the reference preprocessor. Tokens are lowercased (``case``) as the reference does.
Coverage is the share of test tokens the model has a vector for.

Data come from the loaders (``params.dataset``: ``rcv`` or ``sib200``) reading the data root; the
card must list exactly the files the loader reads for each language, so the runner checks their
sha256 first. The i-th data language named by the files (``rcv/{lang}.*``, ``sib200/{code}/*``) is
the i-th entry of ``languages`` (SIB-200's ``eng_Latn`` folder serves the model language ``en``).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np

from ..cards import Subset, TaskCard
from ..errors import DataError
from ..hookspecs import hookimpl
from ..models import Capability, Incompatible, Model
from ..results import encode_column, encode_items
from . import EvalContext, Score, TaskKind, check_params
from .word_similarity import embed_vocabulary

PARAMS: dict[str, tuple] = {
    "dataset": ("rcv", "sib200"),
    "weighting": ("klementiev", "mean"),
    "epochs": (),
    "case": ("lower", "fallback", "exact"),
    "tokenizer": ("whitespace", "words"),
}
DEFAULTS = {"weighting": "klementiev", "epochs": 10, "case": "lower", "tokenizer": "whitespace"}


@dataclass(frozen=True)
class DatasetLayout:
    """Where a dataset keeps one language's files, and the splits its loader reads."""

    pattern: re.Pattern  # relative path -> group "language"
    splits: tuple[str, ...]
    template: str  # relative path of one split: {language}, {split}
    label_column: str


LAYOUTS = {
    "rcv": DatasetLayout(re.compile(r"^rcv/(?P<language>[^/]+)\.(?P<split>train|test)\.jsonl\.gz$"),
                         ("train", "test"), "rcv/{language}.{split}.jsonl.gz", "label"),
    "sib200": DatasetLayout(re.compile(r"^sib200/(?P<language>[^/]+)/(?P<split>train|dev|test)\.tsv\.gz$"),
                            ("train", "dev", "test"), "sib200/{language}/{split}.tsv.gz", "category"),
}


def data_languages(card: TaskCard, subset: Subset) -> tuple[list[str], list[str]]:
    """Data languages named by the subset's files (in order of first appearance) and problems found."""
    dataset = card.params.get("dataset")
    layout = LAYOUTS.get(dataset)
    where = f"subsets.{subset.name}.files"
    if layout is None:
        return [], []
    languages: list[str] = []
    problems = []
    for data_file in subset.files:
        match = layout.pattern.match(PurePosixPath(data_file.path).as_posix())
        if data_file.base != "data" or match is None:
            problems.append(f"{where}: {data_file.path!r} is not a {dataset} file under the data root "
                            f"({layout.template})")
        elif match["language"] not in languages:
            languages.append(match["language"])
    expected = {layout.template.format(language=lang, split=split) for lang in languages for split in layout.splits}
    listed = {f.path for f in subset.files}
    for path in sorted(expected - listed):
        problems.append(f"{where}: missing {path} (the {dataset} loader reads it)")
    if len(languages) != len(subset.languages) and not problems:
        problems.append(f"{where}: files name {len(languages)} data language(s) {languages} "
                        f"for {len(subset.languages)} subset language(s)")
    return languages, problems


_PUNCTUATION = tuple("PS")  # Unicode categories P* (punctuation) and S* (symbols)


def _strip_punctuation(token: str) -> str:
    start, end = 0, len(token)
    while start < end and unicodedata.category(token[start])[0] in _PUNCTUATION:
        start += 1
    while end > start and unicodedata.category(token[end - 1])[0] in _PUNCTUATION:
        end -= 1
    return token[start:end]


def tokenize(text: str, tokenizer: str, case: str) -> list[str]:
    """``whitespace``: the text is already tokenized (RCV); ``words``: also strip edge punctuation (SIB-200)."""
    tokens = (text if case == "exact" else text.lower()).split()
    if tokenizer == "words":
        tokens = [t for t in map(_strip_punctuation, tokens) if t]
    return tokens


class DocumentClassification(TaskKind):
    name = "document-classification"
    description = "idf-weighted mean word vectors + averaged perceptron (Klementiev et al. 2012), accuracy"
    requires = frozenset({Capability.WORDS})
    scores = {"accuracy": True}
    supports_limit = False  # the classifier trains on the whole train split: a --limit run skips it

    def validate(self, card: TaskCard) -> list[str]:
        problems = check_params(card.params, PARAMS)
        if card.params.get("dataset") not in LAYOUTS:
            problems.append(f"params.dataset: required, one of {', '.join(map(repr, LAYOUTS))}")
        epochs = card.params.get("epochs", DEFAULTS["epochs"])
        if not (isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 1):
            problems.append(f"params.epochs: expected a positive integer, got {epochs!r}")
        for subset in card.subsets:
            where = f"subsets.{subset.name}"
            if subset.params:
                problems.append(f"{where}.params: set parameters on the card (they define the protocol)")
            if len(subset.languages) not in (1, 2):
                problems.append(f"{where}.languages: give [language] or [train_language, test_language]")
            problems += data_languages(card, subset)[1]
        return problems

    def evaluate(self, model: Model, card: TaskCard, subset: Subset, ctx: EvalContext) -> Score:
        from ..data.io import column_array
        from ..metrics.classification import (
            document_vectors,
            idf_weights,
            train_eval_linear,
        )

        params = {**DEFAULTS, **card.params}
        layout = LAYOUTS[params["dataset"]]
        folders, problems = data_languages(card, subset)
        if problems:
            raise DataError(f"task {card.name!r}: {problems[0]}")
        train_lang, test_lang = subset.languages[0], subset.languages[-1]
        known = model.languages()
        for language in dict.fromkeys((train_lang, test_lang)):
            if known is not None and language not in known:
                raise Incompatible(f"model has no {language!r} words")
        train_data = _load(params["dataset"], ctx.data_dir, folders[0])
        test_data = train_data if len(folders) == 1 else _load(params["dataset"], ctx.data_dir, folders[-1])

        def split(data, name):
            texts = column_array(data[name], "text").tolist()
            labels = column_array(data[name], layout.label_column).tolist()
            return [tokenize(t, params["tokenizer"], params["case"]) for t in texts], labels

        train_tokens, train_labels = split(train_data, "train")
        test_tokens, test_labels = split(test_data, "test")
        idf_train = idf_weights(train_tokens)
        idf_test = idf_train if test_data is train_data else idf_weights(split(test_data, "train")[0])

        lookup_case = "fallback" if params["case"] == "fallback" else "exact"
        words = {train_lang: {t for doc in train_tokens for t in doc}}
        words.setdefault(test_lang, set()).update(t for doc in test_tokens for t in doc)
        table = embed_vocabulary(model, words, lookup_case)
        lookups = {
            lang: {w: v for (l, w), v in table.items() if l == lang and v is not None} for lang in words
        }
        for language, lookup in lookups.items():
            if not lookup:
                raise Incompatible(f"model knows none of the {len(words[language])} {language!r} word types")
        dim = next(v.shape[0] for v in table.values() if v is not None)
        train_x, _ = document_vectors(train_tokens, lookups[train_lang], idf_train,
                                      weighting=params["weighting"], dim=dim)
        test_x, used_share = document_vectors(test_tokens, lookups[test_lang], idf_test,
                                              weighting=params["weighting"], dim=dim)
        result = train_eval_linear(train_x, train_labels, test_x, test_labels, seed=ctx.seed, epochs=params["epochs"])
        details = {
            "train_language": train_lang, "test_language": test_lang, "dataset": params["dataset"],
            "weighting": params["weighting"], "epochs": params["epochs"], "case_policy": params["case"],
            "tokenizer": params["tokenizer"], "idf": "train split of each language",
            "n_train": int(result["n_train"]), "n_test": int(result["n_test"]), "n_classes": int(result["n_classes"]),
            "train_coverage": token_coverage(train_tokens, lookups[train_lang]),
            "test_tokens_used": float(used_share),  # with a vector and an idf weight
            # Per test document (data order): 1 when classified correctly.
            "items": encode_items("document", len(test_labels),
                                  {"correct": encode_column(result["correct"].astype(int).tolist())}),
        }
        return Score(
            scores={"accuracy": float(result["accuracy"])},
            n_items=len(test_labels),
            coverage=token_coverage(test_tokens, lookups[test_lang]),
            details=details,
        )


def token_coverage(token_lists: Sequence[Sequence[str]], lookup: dict[str, np.ndarray]) -> float:
    """Share of tokens (with repetition) that have a vector."""
    counts = Counter(t for tokens in token_lists for t in tokens)
    total = sum(counts.values())
    return sum(n for t, n in counts.items() if t in lookup) / total if total else 0.0


def _load(dataset: str, data_dir, language: str):
    if dataset == "rcv":
        from ..data.rcv import load_rcv

        return load_rcv(data_dir, language)
    from ..data.sib200 import load_sib200

    return load_sib200(data_dir, language)


@hookimpl
def register_task_kinds(register):
    register(DocumentClassification())
