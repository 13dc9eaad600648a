"""Aligned skip-gram training throughput (corpus words/s) through ``mmbench.train.skipgram``, against a bare
``gensim.models.Word2Vec`` training of the same corpus with the same settings, in the same run.

Corpus: the Multi30k task-1 train captions (29,000 per language, about 350k tokens), tokenised by
``mmbench.text.tokenize``; settings: ``SkipgramConfig``'s defaults (300-d, window 5, 5 negatives,
``min_count`` 2, ``sample`` 1e-3, 20 epochs, one worker thread), ``--epochs`` to change the epochs.
Throughput = corpus tokens x epochs / wall seconds, for every contender alike (gensim's own "effective
words" leave out the downsampled ones); the ``*_cpu_time`` rows divide by this process's CPU seconds
instead (all its threads: gensim's worker and job producer, torch's for the alignment), which waiting
for a core on a shared machine does not inflate. Contenders, interleaved, best of ``--repeats``:

- ``monolingual``: ``train_monolingual`` on English (vocabulary, training, copying the vectors and counts
  out of gensim), against ``Word2Vec(...)`` with the same arguments (``build_vocab`` + ``train``);
- ``aligned``: ``build_aligned_vectors`` for en + de, the whole pipeline a model calls (reading and
  tokenising the captions from the warm Arrow cache, training both languages, MUSE normalisation,
  Procrustes + RCSLS on the en-de training dictionary), against bare ``Word2Vec`` trainings of the two
  already tokenised corpora: the ratio is what everything around gensim costs.

Without the real data the monolingual row runs on a synthetic Zipf corpus of the same size (said in its
notes) and the aligned row is skipped (it needs the MUSE dictionaries).

usage: python benchmarks/bench_skipgram.py [--epochs 20] [--repeats 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

import harness
import numpy as np

from mmbench.train.skipgram import (
    Corpus,
    SkipgramConfig,
    _stable_hash,
    build_aligned_vectors,
    multi30k_train_captions,
    train_monolingual,
)

LANGUAGES = ("en", "de")
SEED = 0


def bare_word2vec(sentences: list[list[str]], config: SkipgramConfig) -> None:
    """gensim on its own, with exactly the arguments ``train_monolingual`` passes."""
    from gensim.models import Word2Vec

    model = Word2Vec(vector_size=config.dim, window=config.window, min_count=config.min_count, sg=1, hs=0,
                     negative=config.negative, sample=config.sample, alpha=config.lr, min_alpha=config.lr / 250,
                     epochs=config.epochs, seed=SEED, workers=1, hashfxn=_stable_hash,
                     max_final_vocab=config.max_vocab, sorted_vocab=1)
    model.build_vocab(corpus_iterable=sentences)
    model.train(corpus_iterable=sentences, total_examples=model.corpus_count, epochs=model.epochs)


def synthetic_corpus(n_sentences: int = 29_000, mean_length: int = 12, vocabulary: int = 9_000) -> list[list[str]]:
    rng = np.random.default_rng(0)
    lengths = np.clip(rng.poisson(mean_length, n_sentences), 1, None)
    return [[f"w{int(r) % vocabulary}" for r in rng.zipf(1.2, size=k)] for k in lengths]


def bench(epochs: int, repeats: int, monolingual: bool = True) -> dict:
    config = SkipgramConfig(languages=LANGUAGES, epochs=epochs)
    data = harness.data_dir()
    have_data = data is not None and (data / "multi30k" / "task1").is_dir() and (data / "muse").is_dir()
    # Reading the captions here also builds the Arrow cache, so the timed runs find it warm.
    corpora = ({lang: multi30k_train_captions(data, lang)[0] for lang in LANGUAGES} if have_data
               else {"en": synthetic_corpus()})
    tokens = {lang: sum(map(len, sentences)) for lang, sentences in corpora.items()}
    source = "Multi30k task-1 train captions" if have_data else "synthetic Zipf corpus (no data found)"
    cpu = harness.CpuSeconds()
    contenders = {}
    if monolingual or not have_data:
        contenders["monolingual"] = lambda: cpu.timer(
            "monolingual", lambda: train_monolingual(Corpus(corpora["en"]), config, SEED))
        contenders["bare_monolingual"] = lambda: cpu.timer(
            "bare_monolingual", lambda: bare_word2vec(corpora["en"], config))
    if have_data:
        contenders["aligned"] = lambda: cpu.timer("aligned", lambda: build_aligned_vectors(config, data, SEED))
        contenders["bare_aligned"] = lambda: cpu.timer(
            "bare_aligned", lambda: [bare_word2vec(corpora[lang], config) for lang in LANGUAGES])
    best = harness.interleaved_best(contenders, repeats)
    words = {"monolingual": tokens["en"] * epochs, "aligned": sum(tokens.values()) * epochs}
    cpu_note = "; the same per CPU second of this process (steadier on a shared machine)"
    rows = []
    if "monolingual" in best:
        what = f"en, {source}, {tokens['en']:,} tokens x {epochs} epochs: train_monolingual vs gensim alone"
        rows += [harness.row("monolingual", words["monolingual"] / best["monolingual"],
                             words["monolingual"] / best["bare_monolingual"], "words/s", "bare Word2Vec", what),
                 harness.row("monolingual_cpu_time", words["monolingual"] / cpu.best["monolingual"],
                             words["monolingual"] / cpu.best["bare_monolingual"], "words/CPU-s",
                             "bare Word2Vec (CPU time)", what + cpu_note)]
    else:
        rows.append(harness.skipped("monolingual", "left out of the quick run (the aligned row covers the pipeline)"))
    if have_data:
        what = (f"en + de, {sum(tokens.values()):,} tokens x {epochs} epochs: build_aligned_vectors (captions, "
                f"training, normalisation, Procrustes + RCSLS) vs gensim alone")
        rows += [harness.row("aligned", words["aligned"] / best["aligned"], words["aligned"] / best["bare_aligned"],
                             "words/s", "bare Word2Vec x 2", what),
                 harness.row("aligned_cpu_time", words["aligned"] / cpu.best["aligned"],
                             words["aligned"] / cpu.best["bare_aligned"], "words/CPU-s",
                             "bare Word2Vec x 2 (CPU time)", what + cpu_note)]
    else:
        rows.append(harness.skipped("aligned", "needs the Multi30k captions and MUSE dictionaries (no data found)"))
    details: dict[str, Any] = {"epochs": epochs, "repeats": repeats, "tokens": tokens,
                               "seconds": {name: round(s, 3) for name, s in best.items()},
                               "cpu_seconds": {name: round(s, 3) for name, s in cpu.best.items()},
                               "config": {k: v for k, v in dataclasses.asdict(config).items()
                                          if k in ("dim", "window", "negative", "min_count", "sample", "align")}}
    return {"rows": rows, "details": details}


def run(quick: bool) -> dict:
    """Quick: the aligned row only, 1 epoch, 2 repeats; otherwise both rows at the default 20 epochs, 2 repeats."""
    if quick:
        return bench(epochs=1, repeats=2, monolingual=False)
    return bench(epochs=SkipgramConfig().epochs, repeats=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=SkipgramConfig().epochs)
    parser.add_argument("--repeats", type=int, default=2, help="interleaved runs of each contender")
    args = parser.parse_args()
    print(json.dumps({"machine": harness.machine_facts(), **bench(args.epochs, args.repeats)}, indent=2))


if __name__ == "__main__":
    main()
