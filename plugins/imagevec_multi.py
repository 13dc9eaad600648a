"""``imagevec-multi``: one multilingual word embedding trained on every offline source at once — the
multi-task ImageVec that Singhal et al. (2019, §6) propose as their next step — and its ablations.

One ``lang:word`` table (bag-of-words texts, as ImageVec) is trained by three objectives, summed with
weights into one loss and one optimizer step per training step:

* **image–text** (ImageVec's): each text's cosine with its own image wins a softmax (temperature 0.1)
  over the batch's images. Sources (``image_sources``, each repeated ``image_repeats`` times per epoch):
  ``emoji`` (CLDR names and keywords in 109 languages with their drawings' features), ``multi30k`` (the
  29,000 task-1 train images as free vectors: co-occurrence of their en/de/fr/cs captions) and
  ``multi30k-mini`` (its 700 train photos' ResNet-50 features). Each feature space has its own image MLP.
* **context**: skip-gram with negative sampling (window 5, 5 negatives, unigram^0.75 noise, frequent
  words subsampled at 1e-3: word2vec's defaults) on the Multi30k train captions of each language and
  the RCV train documents (``context_sources``; a user corpus as ``LANG=PATH``), with a second table of
  context vectors, as word2vec. Words seen only there need ``context_min_count`` occurrences.
* **parallel**: texts that translate each other — a Multi30k train image's four captions, a train emoji's
  CLDR names across languages (``translation_sources``) — pulled together by a symmetric in-batch softmax
  over ``translation_batch`` distinct groups per step.

The trainer's batches are the image–text pairs; the context and translation batches are drawn per step as
a pure function of (seed, step) (:mod:`mmbench.train.streams`), so resume stays exact. Training length is
always the image–text epoch, so the ablations (``-noimage``, ``-nocontext``, ``-noparallel``: that
objective's weight 0, its sources unread and undeclared) train as many steps with the same schedule. The
vocabulary holds only words some active objective trains: an ablation never reports an untrained word as
covered. Never trained on: any validation or test split (``seen_data`` lists every source's split).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import mmbench
from mmbench.errors import ConfigError, DataError
from mmbench.text import tokenize
from mmbench.train.config import TrainConfig
from mmbench.train.corpora import SEEN_DATA, SOURCES, build_pairs
from mmbench.train.lifecycle import TrainedModel, TrainingRun
from mmbench.train.text_sources import (
    CONTEXT_SEEN,
    TRANSLATION_SEEN,
    check_context_source,
    check_translation_source,
    context_sentences,
    translation_groups,
)
from mmbench.train.vocabulary import Vocabulary, WordTableEmbeddings

STATE_FORMAT, STATE_FILE = "mmbench-imagevec-multi", "imagevec-multi.json"


@dataclass(frozen=True)
class ImageVecMultiConfig:
    dim: int = 100
    hidden: int = 200  # image MLP hidden size
    languages: tuple[str, ...] = ()  # empty: every language of every source
    image_sources: tuple[str, ...] = ("emoji", "multi30k", "multi30k-mini")
    image_repeats: tuple[int, ...] = (1, 5, 5)  # per source: passes per epoch (the single-source models' epochs)
    context_sources: tuple[str, ...] = ("multi30k", "rcv")
    translation_sources: tuple[str, ...] = ("multi30k", "emoji")
    image_weight: float = 1.0  # 0 drops an objective (and its sources)
    context_weight: float = 1.0
    translation_weight: float = 1.0
    temperature: float = 0.1  # image-text and translation softmaxes
    context_batch: int = 4096  # centre words per step
    window: int = 5
    negatives: int = 5
    subsample: float = 1e-3
    context_min_count: int = 5  # occurrences a word seen only in the context corpora needs
    translation_batch: int = 500  # translation groups per step
    init_std: float = 0.1
    # ImageVec's settings (one epoch of batches of 1000, lr 0.01, no clipping) with lazy Adam: the tables
    # have sparse gradients, so a step costs what it touches (dense Adam: ~1 s a step on 333k x 100 x 2).
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=1, batch_size=1000, lr=0.01,
                                                                   grad_clip=None, optimizer="lazy-adam"))

    def __post_init__(self) -> None:
        for name in ("dim", "hidden", "context_batch", "window", "negatives", "translation_batch",
                     "context_min_count"):
            if getattr(self, name) < 1:
                raise ConfigError(f"imagevec-multi: {name} must be >= 1, got {getattr(self, name)}")
        if min(self.image_weight, self.context_weight, self.translation_weight) < 0:
            raise ConfigError("imagevec-multi: objective weights must be >= 0 (0 drops the objective)")
        if not (self.temperature > 0 and self.init_std > 0 and 0 <= self.subsample < 1):
            raise ConfigError("imagevec-multi: temperature and init_std must be > 0, subsample in [0, 1)")
        if not self.image_sources or len(self.image_repeats) != len(self.image_sources):
            raise ConfigError("imagevec-multi: give image_sources (they set the training length, even with "
                              "image_weight 0) and one image_repeats entry per source")
        if any(r < 1 for r in self.image_repeats) or len(set(self.image_sources)) != len(self.image_sources):
            raise ConfigError("imagevec-multi: image_repeats must be >= 1 and image_sources distinct")
        for source in self.image_sources:
            if source not in SOURCES:
                raise ConfigError(f"imagevec-multi: unknown image source {source!r} (known: {', '.join(SOURCES)})")
        for source in self.context_sources:
            check_context_source(source)
        for source in self.translation_sources:
            check_translation_source(source)


class ImageVecMulti(WordTableEmbeddings, TrainedModel):
    """One word table trained on image–text, monolingual context and translations at once."""

    name = "imagevec-multi"
    Config = ImageVecMultiConfig
    capabilities = frozenset({mmbench.Capability.WORDS, mmbench.Capability.TEXT, mmbench.Capability.IMAGES,
                              mmbench.Capability.TRAINABLE})
    state_format, state_file = STATE_FORMAT, STATE_FILE
    load_checks = ("dim", "hidden")

    def __init__(self, config: Any = None, argument: str | None = None):
        super().__init__(config, argument)
        if not self._image_features():
            self.capabilities = self.capabilities - {mmbench.Capability.IMAGES}

    def _image_features(self) -> list[str]:
        """The image sources whose features the model learns to embed (co-occurrence ones have none)."""
        active = self.config.image_weight > 0
        return [s for s in self.config.image_sources if active and s in _FEATURE_SOURCES]

    def seen_data(self) -> frozenset[str]:
        config, seen = self.config, set()
        if config.image_weight > 0:
            seen.update(*(SEEN_DATA.get(s, ()) for s in config.image_sources))
        if config.context_weight > 0:
            seen.update(CONTEXT_SEEN[s] for s in config.context_sources if s in CONTEXT_SEEN)
        if config.translation_weight > 0:
            seen.update(TRANSLATION_SEEN[s] for s in config.translation_sources)
        return frozenset(seen)

    # -- train or load --------------------------------------------------------------------------------
    def training_data(self, ctx: mmbench.RunContext) -> tuple[dict[str, Any], Any]:
        config = self.config
        languages = config.languages
        image_pairs = [build_pairs(source, languages, min_image_languages=1, tokenize=tokenize,
                                   data_dir=ctx.data_dir) for source in config.image_sources]
        sentences = [] if config.context_weight == 0 else [
            s for source in config.context_sources
            for s in context_sentences(source, languages, data_dir=ctx.data_dir, tokenize=tokenize)]
        groups = [] if config.translation_weight == 0 else [
            g for source in config.translation_sources
            for g in translation_groups(source, languages, data_dir=ctx.data_dir, tokenize=tokenize)]
        texts = [(lang, tokens) for group in groups for lang, tokens in group]
        if config.image_weight > 0:
            texts += [t for pairs in image_pairs for t in zip(pairs.query_languages, pairs.query_tokens)]
        occurrences = Counter((lang, token) for lang, tokens in sentences for token in tokens)
        texts += [(lang, [token]) for (lang, token), n in occurrences.items() if n >= config.context_min_count]
        if not texts:
            raise DataError("imagevec-multi: no training text in the chosen sources and languages")
        vocabulary = Vocabulary.from_texts(texts, min_count=1, tagged=True, buckets=0)
        images = [{"source": source, "feature_source": pairs.feature_source,
                   "feature_dim": int(pairs.image_features.shape[1]), "n_images": len(pairs.image_ids)}
                  for source, pairs in zip(config.image_sources, image_pairs)]
        state = {"dim": config.dim, "hidden": config.hidden, "images": images if config.image_weight > 0 else [],
                 "context": config.context_weight > 0, "vocabulary": vocabulary.to_json(),
                 "n_pairs": int(sum(len(p) * r for p, r in zip(image_pairs, config.image_repeats))),
                 "n_sentences": len(sentences), "n_groups": len(groups)}
        return state, (image_pairs, sentences, groups, vocabulary)

    def build_net(self, state: dict[str, Any], *, training: bool = False) -> Any:
        from mmbench_plugins.imagevec_multi_net import MultiNet

        vocabulary = state["vocabulary"]
        return MultiNet(len(vocabulary["keys"]), state["dim"], state["hidden"], state["images"],
                        context=state["context"], init_std=self.config.init_std)

    def fit(self, net: Any, data: Any, run: TrainingRun) -> None:
        from mmbench_plugins.imagevec_multi_net import train

        train(net, *data, self.config, run)

    def ready(self) -> None:
        self.vocab = Vocabulary.from_json(self.state["vocabulary"])

    # -- images: one encoder per feature space ------------------------------------------------------
    def image_space(self, source: str) -> tuple[Any, int]:
        for entry in self.state["images"]:
            if entry["feature_dim"] and entry["feature_source"] == source:
                return self.net.images[self.net.image_key(entry["source"])], int(entry["feature_dim"])
        known = sorted(e["feature_source"] for e in self.state["images"] if e["feature_dim"])
        raise mmbench.Incompatible(f"{self.name} embeds images of {', '.join(known) or 'no'} features, not {source}")

    def embedding_dim(self) -> int:
        return int(self.state["dim"])


_FEATURE_SOURCES = ("emoji", "multi30k-mini")  # image sources with features; multi30k is co-occurrence only

class ImageVecMultiNoImage(ImageVecMulti):
    """The ablation without image-text training: it embeds no images."""

    capabilities = ImageVecMulti.capabilities - {mmbench.Capability.IMAGES}


VARIANTS: dict[str, tuple[type[ImageVecMulti], dict[str, Any], str]] = {
    "imagevec-multi": (ImageVecMulti, {}, "Multi-task ImageVec: image-text + monolingual context + translations"),
    "imagevec-multi-noimage": (ImageVecMultiNoImage, {"image_weight": 0.0},
                               "imagevec-multi without the image-text objective"),
    "imagevec-multi-nocontext": (ImageVecMulti, {"context_weight": 0.0},
                                 "imagevec-multi without the context objective"),
    "imagevec-multi-noparallel": (ImageVecMulti, {"translation_weight": 0.0},
                                  "imagevec-multi without the translation objective"),
}


@mmbench.hookimpl
def register_models(register):
    for name, (cls, defaults, description) in VARIANTS.items():
        register(cls, name=name, defaults=defaults, description=description)
