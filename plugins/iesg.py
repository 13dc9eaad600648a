"""``iesg``, ``iesg-l2`` — image-enhanced skip-gram (Luo 2018, "Exploration on Grounded Word Embedding:
Matching Words and Images with Image-Enhanced Skip-Gram Model") and its L2 baseline.

**Words.** One language-tagged table (rows ``lang:word`` in language blocks) started from the first-party
aligned skip-gram (:func:`mmbench.train.skipgram.aligned_skipgram_vectors`, gensim, cached; settings in
``skipgram.*``), so all languages start in one English space. The same table is the central and the
context side of every energy ``E(a, b) = a . b``.

**Text.** word2vec's (central, context) pairs over the pre-training corpus (the Multi30k task-1 *train*
captions of each language, plus ``skipgram.corpus.LANG=FILE``): frequent words downsampled with
``skipgram.sample``, a window drawn from 1..``skipgram.window`` per central word; drawn once from the run
seed. Negatives: ``negatives`` words of the central word's language, drawn per step from ``count^0.75``.

**Images.** A word "has images" when it is a token of a CLDR name or keyword of an emoji *train* concept
in that language (``image_words = "tokens"``; ``"single"``: only one-word names and keywords), and its
images are those concepts' drawings in every style (:func:`mmbench.train.corpora.emoji_pairs`).
``v_i = W_p . f_i``, ``f_i`` the frozen CNN features of one of them, drawn at random each time,
L2-normalised and centred on the training images' mean feature.

**Losses** (:mod:`mmbench.train.iesg`), each step in this order on the same batch, with its own momentum-SGD
optimizer (alternating minimisation): ``word`` (the skip-gram hinge, updates the word table), then
``image`` (the hinge with ``v_i`` as the central word, for the rows whose central word has images; updates
``W_p``, and the context and negative word vectors when ``image_updates = "all"``). ``iesg-l2`` trains
only ``W_p``, on the same rows, to minimise ``||W_p . f_i - w_i||^2`` with the pre-trained table fixed.

Texts embed as the mean of their known words' vectors (an all-unknown text: zeros); images as ``v``.
See docs/iesg.md for every choice the paper leaves open and the measured numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

import mmbench
from mmbench.errors import ConfigError
from mmbench.text import tokenize
from mmbench.train.config import TrainConfig
from mmbench.train.lifecycle import TrainedModel, TrainingRun
from mmbench.train.skipgram import MULTI30K_LANGUAGES, SkipgramConfig

IMAGE_SEEN = frozenset({"emoji:train"})


def _default_skipgram() -> SkipgramConfig:
    return SkipgramConfig(languages=("en", "de", "fr"))


def _default_train() -> TrainConfig:
    # Sized for CPU (docs/iesg.md): 3,000 steps of 512 pairs at lr 0.2; the paper's 16 at lr 0.01 is
    # ``iesg-paper`` (PAPER_TRAIN). Momentum SGD 0.9 and no clipping as in the paper.
    return TrainConfig(max_steps=3_000, batch_size=512, optimizer="sgd", lr=0.2, momentum=0.9, grad_clip=None,
                       log_every=100, checkpoint_every=1_000)


# The paper's optimiser: momentum SGD, lr 0.01, momentum 0.9, batch 16; 96,000 steps see the same
# 1.5M pairs as the default 3,000 x 512.
PAPER_TRAIN: dict[str, Any] = {"max_steps": 96_000, "batch_size": 16, "lr": 0.01, "checkpoint_every": 10_000}


@dataclass(frozen=True)
class IESGConfig:
    loss: Literal["iesg", "l2"] = "iesg"  # l2: the baseline (W_p regresses onto the fixed word vectors)
    # Pre-training, and the corpus, window and downsampling of the skip-gram pairs (languages, dim, corpus.*)
    skipgram: SkipgramConfig = field(default_factory=_default_skipgram)
    margin: float = 1.0  # m
    lam: float = 5.0  # the paper's lambda: weight of the positive energy
    negatives: int = 5  # per pair, from the central word's language, p ~ count^0.75
    image_words: Literal["single", "tokens"] = "tokens"  # any token of a CLDR name/keyword, or whole ones only
    image_updates: Literal["projection", "all"] = "projection"  # what the image loss updates besides W_p
    image_lr: float | None = None  # lr of the image (or L2) objective; None: train.lr
    normalize_features: bool = True  # L2-normalise the CNN features before W_p
    center_features: bool = True  # subtract the training images' mean (normalised) feature before W_p
    train: TrainConfig = field(default_factory=_default_train)

    def __post_init__(self) -> None:
        if self.negatives < 1:
            raise ConfigError(f"iesg: negatives must be >= 1, got {self.negatives}")
        if self.image_lr is not None and not self.image_lr > 0:
            raise ConfigError(f"iesg: image_lr must be > 0 (or none), got {self.image_lr}")
        if not (self.margin >= 0 and self.lam > 0):
            raise ConfigError(f"iesg: margin must be >= 0 and lam > 0, got margin={self.margin}, lam={self.lam}")

    @property
    def languages(self) -> tuple[str, ...]:
        return self.skipgram.languages


@dataclass
class TrainingData:
    """What :meth:`IESG.fit` trains on besides the network."""

    center: Any  # (n_pairs,) int64 tensor of table rows
    context: Any
    collate: Any  # mmbench.train.iesg.IESGCollate
    init: np.ndarray  # (rows, dim) pre-trained vectors in table order
    feature_mean: np.ndarray  # (feature_dim,) what W_p's input is centred on (zeros: not centred)


class IESG(TrainedModel):
    """Skip-gram whose central words can be images: ``W_p`` maps CNN features into the word space."""

    name = "iesg"
    Config = IESGConfig
    capabilities = frozenset({mmbench.Capability.WORDS, mmbench.Capability.TEXT, mmbench.Capability.IMAGES,
                              mmbench.Capability.TRAINABLE})
    state_format, state_file = "mmbench-iesg", "iesg.json"
    load_checks = ("loss", "normalize_features", "center_features")

    def identity(self) -> dict[str, Any]:
        from mmbench.cards import file_sha256

        corpus = self.config.skipgram.corpus
        return {"corpus_sha256": {lang: [file_sha256(Path(p).expanduser()) for p in files]
                                  for lang, files in corpus.items()}} if corpus else {}

    def seen_data(self) -> frozenset[str]:
        return IMAGE_SEEN | self.config.skipgram.seen_data()

    # -- training ---------------------------------------------------------------------------------
    def training_data(self, ctx: mmbench.RunContext) -> tuple[dict[str, Any], TrainingData]:
        import torch

        from mmbench.data.emoji import load_emoji
        from mmbench.train.corpora import emoji_pairs
        from mmbench.train.iesg import IESGCollate, keep_probability, skipgram_pairs
        from mmbench.train.skipgram import (
            Corpus,
            aligned_skipgram_vectors,
            multi30k_train_captions,
        )

        config = self.config
        languages = list(config.languages)
        unknown = sorted(set(languages) - set(load_emoji().languages))
        if unknown:
            raise ConfigError(f"iesg: {', '.join(unknown)} have no emoji names, so no word of them has images")
        vectors = aligned_skipgram_vectors(config.skipgram, ctx.data_dir, seed=ctx.seed)
        starts, words, counts = {}, {}, []
        for lang in languages:
            starts[lang] = sum(len(w) for w in words.values())
            words[lang] = list(vectors.words[lang])
            counts.append(np.asarray(vectors.info["counts"][lang], dtype=np.int64))
        all_counts = np.concatenate(counts)
        init = np.concatenate([vectors.vectors[lang] for lang in languages]).astype(np.float32)

        rng = np.random.default_rng(ctx.seed)
        keep = keep_probability(all_counts, config.skipgram.sample)
        centers, contexts, n_pairs = [], [], {}
        for lang in languages:
            index = {w: starts[lang] + i for i, w in enumerate(words[lang])}
            sentences: list[list[str]] = []
            if config.skipgram.multi30k and lang in MULTI30K_LANGUAGES:
                sentences, _ = multi30k_train_captions(Path(ctx.data_dir), lang)
            corpus = Corpus(sentences, [Path(p).expanduser() for p in config.skipgram.corpus.get(lang, ())])
            rows = [np.fromiter((index[t] for t in s if t in index), dtype=np.int64) for s in corpus]
            center, context = skipgram_pairs(rows, keep, config.skipgram.window, rng)
            centers.append(center)
            contexts.append(context)
            n_pairs[lang] = len(center)

        images = emoji_pairs(languages, tokenize=tokenize)
        images_of: list[set[int]] = [set() for _ in range(len(all_counts))]
        query_images: dict[int, list[int]] = {}
        for query, image in zip(images.pair_query.tolist(), images.pair_image.tolist()):
            query_images.setdefault(query, []).append(image)
        lookup = {lang: {w: starts[lang] + i for i, w in enumerate(words[lang])} for lang in languages}
        for query, (lang, tokens) in enumerate(zip(images.query_languages, images.query_tokens)):
            if config.image_words == "single" and len(tokens) != 1:
                continue
            for token in tokens:
                row = lookup[lang].get(token)
                if row is not None:
                    images_of[row].update(query_images.get(query, ()))
        image_words = {lang: sum(1 for r in range(starts[lang], starts[lang] + len(words[lang])) if images_of[r])
                       for lang in languages}
        if not any(image_words.values()):
            raise ConfigError(f"iesg: no word of the {', '.join(languages)} vocabularies names an emoji train "
                              f"concept: nothing to learn W_p from")
        collate = IESGCollate(all_counts, [starts[lang] for lang in languages], [sorted(s) for s in images_of],
                              torch.from_numpy(images.image_features), config.negatives)
        state = {
            "loss": config.loss, "languages": languages, "dim": int(init.shape[1]), "words": words,
            "feature_source": images.feature_source, "feature_dim": int(images.image_features.shape[1]),
            "normalize_features": config.normalize_features, "center_features": config.center_features,
            "pretrained": vectors.directory.name,
            "pairs": n_pairs, "image_words": image_words, "images": len(images.image_ids),
        }
        features = images.image_features.astype(np.float64)
        if config.normalize_features:
            features /= np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
        mean = features.mean(axis=0) if config.center_features else np.zeros(features.shape[1])
        data = TrainingData(torch.from_numpy(np.concatenate(centers)), torch.from_numpy(np.concatenate(contexts)),
                            collate, init, mean.astype(np.float32))
        return state, data

    def build_net(self, state: dict[str, Any], *, training: bool = False) -> Any:
        from mmbench.train.distributed import env_world_size
        from mmbench.train.iesg import IESGNet

        n_words = sum(len(w) for w in state["words"].values())
        # The word table's gradient as one dense buffer reused across steps (see imagevec_net): a fresh
        # rows x dim gradient every step costs more than the step itself on CPU. Single-process CPU only.
        reuse = training and self.device is not None and self.device.type == "cpu" and env_world_size() == 1
        net = IESGNet(n_words, state["dim"], state["feature_dim"], normalize_features=state["normalize_features"],
                      sparse=reuse)
        if reuse:
            from mmbench.train.grads import ReusedDenseGrad

            net.words.weight.register_post_accumulate_grad_hook(ReusedDenseGrad(net.words.weight))
        return net

    def fit(self, net: Any, data: TrainingData, run: TrainingRun) -> None:
        import torch

        from mmbench.train import Objective, Trainer
        from mmbench.train.iesg import image_loss, l2_loss, word_loss

        config = self.config
        with torch.no_grad():
            net.words.weight.copy_(torch.from_numpy(data.init))
            net.image.mean.copy_(torch.from_numpy(data.feature_mean))
        hinge = {"margin": config.margin, "lam": config.lam}
        if config.loss == "l2":
            objectives = [Objective("l2", l2_loss, params=lambda name: name.startswith("image."), lr=config.image_lr)]
        else:
            image_params = (lambda name: True) if config.image_updates == "all" else (
                lambda name: name.startswith("image."))
            update_words = config.image_updates == "all"
            objectives = [
                Objective("word", lambda m, b: word_loss(m, b, **hinge), params=lambda name: name.startswith("words.")),
                Objective("image", lambda m, b: image_loss(m, b, update_words=update_words, **hinge),
                          params=image_params, lr=config.image_lr),
            ]
        # Momentum buffers of rows no batch touches decay by 0.9 a step and reach float32 subnormals after
        # ~800 steps; a fused SGD step over a 20k x 300 table with subnormal momentum took 259 ms instead of
        # 19 ms. Flushing them to zero changes values below 1.2e-38 only; restored afterwards.
        flushed = torch.set_flush_denormal(True)
        try:
            Trainer(net, objectives, (data.center, data.context), run.config, collate=data.collate,
                    run_dir=run.dir).fit(resume=True)
        finally:
            if flushed:
                torch.set_flush_denormal(False)

    def ready(self) -> None:
        state = self.state
        self._index: dict[str, dict[str, int]] = {}
        start = 0
        for lang in state["languages"]:
            self._index[lang] = {w: start + i for i, w in enumerate(state["words"][lang])}
            start += len(state["words"][lang])

    def embedding_dim(self) -> int:
        return int(self.state["dim"])

    # -- embedding ----------------------------------------------------------------------------------
    def languages(self) -> list[str]:
        return list(self.state["languages"])

    def _rows(self, language: str) -> dict[str, int]:
        if language not in self._index:
            raise mmbench.Incompatible(f"{self.name} was trained on {', '.join(self.state['languages'])}, "
                                       f"not {language!r}")
        return self._index[language]

    def _table(self) -> np.ndarray:
        return self.net.words.weight.detach().float().cpu().numpy()

    def vocabulary(self, language: str) -> list[str]:
        self._rows(language)
        return list(self.state["words"][language])

    def embed_words(self, words: Sequence[str], language: str) -> tuple[np.ndarray, np.ndarray]:
        index = self._rows(language)
        rows = np.array([index.get(w.lower(), -1) for w in words], dtype=np.int64)
        found = rows >= 0
        out = np.zeros((len(words), self.embedding_dim()), dtype=np.float32)
        if found.any():
            out[found] = self._table()[rows[found]]
        return out, found

    def embed_texts(self, texts: Sequence[str], language: str) -> np.ndarray:
        index = self._rows(language)
        table = self._table()
        out = np.zeros((len(texts), self.embedding_dim()), dtype=np.float32)
        for i, text in enumerate(texts):
            rows = [index[t] for t in tokenize(text) if t in index]
            if rows:
                out[i] = table[rows].mean(axis=0)
        return out


VARIANTS: dict[str, tuple[dict[str, Any], str]] = {
    "iesg": ({}, ("Image-enhanced skip-gram (Luo 2018): skip-gram hinge + image hinge through W_p, "
                  "emoji train concepts, Multi30k captions en/de/fr")),
    "iesg-l2": ({"loss": "l2"}, "IESG's L2 baseline: W_p regresses emoji images onto fixed skip-gram vectors"),
    "iesg-paper": ({"train": PAPER_TRAIN}, "IESG with the paper's optimiser settings (batch 16, lr 0.01; slow on CPU)"),
}


@mmbench.hookimpl
def register_models(register):
    for name, (defaults, description) in VARIANTS.items():
        register(IESG, name=name, defaults=defaults, description=description)
