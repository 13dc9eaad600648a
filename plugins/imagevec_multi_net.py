"""The torch half of ``imagevec-multi``: its network, its summed loss and the image–text batches.

``plugins/imagevec_multi.py`` holds the config, data and embedding plumbing and imports this module only
to train or embed, so registering the models does not import torch. See that module for the method.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mmbench.train.bags import PairCollate, bags
from mmbench.train.contrastive import StepCounter
from mmbench.train.corpora import TrainingPairs
from mmbench.train.distributed import rank, world_size
from mmbench.train.losses import in_batch_softmax
from mmbench.train.streams import ContextCorpus, TranslationGroups
from mmbench.train.vocabulary import Vocabulary


class MultiNet(torch.nn.Module):
    """``words`` (the embedding every objective trains), one image encoder per image source (an MLP over
    its features, or a free vector per image for co-occurrence), ``context`` vectors for skip-gram and
    ``counter`` (the training step, checkpointed, from which the auxiliary batches are drawn)."""

    def __init__(self, n_rows: int, dim: int, hidden: int, images: Sequence[dict[str, Any]], *, context: bool,
                 init_std: float) -> None:
        super().__init__()
        self.words = torch.nn.EmbeddingBag(n_rows, dim, mode="mean", sparse=True)  # sparse: lazy-adam
        torch.nn.init.normal_(self.words.weight, std=init_std)  # ImageVec's start (small: Adam moves them far)
        self.images = torch.nn.ModuleDict()
        for entry in images:
            if entry["feature_dim"]:
                encoder: torch.nn.Module = torch.nn.Sequential(
                    torch.nn.Linear(entry["feature_dim"], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, dim),
                    torch.nn.ReLU())
            else:
                encoder = torch.nn.Embedding(entry["n_images"], dim, sparse=True)
            self.images[self.image_key(entry["source"])] = encoder
        self.context = torch.nn.Embedding(n_rows, dim, sparse=True) if context else None
        if self.context is not None:
            torch.nn.init.zeros_(self.context.weight)  # word2vec's start for output vectors
        self.counter = StepCounter()

    @staticmethod
    def image_key(source: str) -> str:
        return source.replace("-", "_")  # ModuleDict keys are attribute-like

    def encode_queries(self, tokens: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self.words(tokens, offsets)


class ImageTextBatches:
    """Pair indices -> token bags of the texts and, per image source, the batch positions and inputs
    (features, or image ids for a co-occurrence source). Empty when the objective is dropped."""

    def __init__(self, pairs: Sequence[TrainingPairs], repeats: Sequence[int], vocabulary: Vocabulary | None,
                 keys: Sequence[str]) -> None:
        self.keys = list(keys)
        query_offset = np.cumsum([0] + [len(p.query_tokens) for p in pairs])[:-1]
        def repeated(arrays: list[np.ndarray]) -> torch.Tensor:
            return torch.from_numpy(np.concatenate([np.tile(a, r) for a, r in zip(arrays, repeats)]))
        self.data = (repeated([p.pair_query + o for p, o in zip(pairs, query_offset)]),
                     repeated([p.pair_image for p in pairs]),
                     repeated([np.full(len(p), i, dtype=np.int64) for i, p in enumerate(pairs)]))
        self.active = vocabulary is not None
        if self.active:
            rows = [vocabulary.rows(lang, tokens, bucket=False)
                    for p in pairs for lang, tokens in zip(p.query_languages, p.query_tokens)]
            self.texts = PairCollate(rows, None, weighted=False)
            self.inputs = [torch.from_numpy(p.image_features) if p.image_features.shape[1] else None for p in pairs]

    def __call__(self, batch: tuple[torch.Tensor, ...]) -> dict[str, Any]:
        if not self.active:
            return {}
        query, image, source = batch
        out = self.texts((query, image))
        per_source = []
        for index, key in enumerate(self.keys):
            positions = torch.nonzero(source == index).flatten()
            if len(positions):
                local = image[positions]
                inputs = self.inputs[index][local] if self.inputs[index] is not None else local
                per_source.append((key, positions, inputs))
        out["images"] = per_source
        return out


class MultiLoss:
    """``image_weight * image-text + context_weight * skip-gram + translation_weight * translation``."""

    def __init__(self, config: Any, corpus: ContextCorpus | None, groups: TranslationGroups | None,
                 group_texts: list[list[int]], *, seed: int) -> None:
        self.config, self.corpus, self.groups, self.group_texts, self.seed = config, corpus, groups, group_texts, seed

    def __call__(self, net: MultiNet, batch: dict[str, Any]) -> torch.Tensor:
        config = self.config
        step = int(net.counter.advance())
        loss = net.words.weight.new_zeros(())
        if batch:
            loss = loss + config.image_weight * image_text_loss(net, batch, temperature=config.temperature)
        if self.corpus is not None:
            loss = loss + config.context_weight * self.context_loss(net, step)
        if self.groups is not None:
            loss = loss + config.translation_weight * self.translation_loss(net, step)
        return loss

    def context_loss(self, net: MultiNet, step: int) -> torch.Tensor:
        config = self.config
        drawn = self.corpus.sample(step, config.context_batch, seed=self.seed, window=config.window,
                                   negatives=config.negatives)
        share = _rank_share(len(drawn.centres))
        device = net.words.weight.device
        def rows(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(array[share]).to(device)
        return skipgram_loss(F.embedding(rows(drawn.centres), net.words.weight, sparse=True), net.context(rows(drawn.contexts)),
                             net.context(rows(drawn.negatives)), rows(drawn.weight))

    def translation_loss(self, net: MultiNet, step: int) -> torch.Tensor:
        side_a, side_b = self.groups.sample(step, self.config.translation_batch, seed=self.seed)
        share = _rank_share(len(side_a))
        device = net.words.weight.device
        def encode(ids: np.ndarray) -> torch.Tensor:
            return net.words(*(t.to(device) for t in bags([self.group_texts[i] for i in ids[share]])))
        return in_batch_softmax(encode(side_a), encode(side_b), temperature=self.config.temperature, symmetric=True)


def image_text_loss(net: MultiNet, batch: dict[str, Any], *, temperature: float) -> torch.Tensor:
    """ImageVec's: each text's cosine with its image wins a softmax over the batch's images (text -> image)."""
    texts = net.words(batch["tokens"], batch["offsets"])
    images = texts.new_zeros(texts.shape)
    for key, positions, inputs in batch["images"]:
        images = images.index_copy(0, positions, net.images[key](inputs).to(texts.dtype))
    return in_batch_softmax(texts, images, temperature=temperature, symmetric=False)


def skipgram_loss(centres: torch.Tensor, contexts: torch.Tensor, negatives: torch.Tensor,
                  weight: torch.Tensor) -> torch.Tensor:
    """Negative-sampling loss (Mikolov et al. 2013): ``-log s(u.v) - sum_k log s(-u.n_k)`` per pair,
    averaged over the pairs of weight 1."""
    positive = F.logsigmoid((centres * contexts).sum(-1))
    negative = F.logsigmoid(-torch.bmm(negatives, centres.unsqueeze(-1)).squeeze(-1)).sum(-1)
    return -((positive + negative) * weight).sum() / weight.sum().clamp(min=1.0)


def _rank_share(n: int) -> np.ndarray:
    """This rank's rows of a step's auxiliary batch (every rank draws the same batch)."""
    return np.array_split(np.arange(n), world_size())[rank()]


def train(net: MultiNet, image_pairs: list[TrainingPairs], sentences: list[tuple[str, list[str]]],
          groups: list[list[tuple[str, list[str]]]], vocabulary: Vocabulary, config: Any, run: Any) -> None:
    from mmbench.train import Objective, Trainer

    batches = ImageTextBatches(image_pairs, config.image_repeats, vocabulary if config.image_weight > 0 else None,
                               [MultiNet.image_key(s) for s in config.image_sources])
    corpus = None
    if config.context_weight > 0 and sentences:
        corpus = ContextCorpus([vocabulary.rows(lang, tokens, bucket=False) for lang, tokens in sentences],
                               n_rows=len(vocabulary), subsample=config.subsample)
    translation, group_texts = None, []
    if config.translation_weight > 0 and groups:
        members = []
        for group in groups:
            members.append(list(range(len(group_texts), len(group_texts) + len(group))))
            group_texts += [vocabulary.rows(lang, tokens, bucket=False) for lang, tokens in group]
        translation = TranslationGroups(members)
    loss = MultiLoss(config, corpus, translation, group_texts, seed=run.config.seed)
    Trainer(net, Objective("multitask", loss), batches.data, run.config, collate=batches,
            run_dir=run.dir).fit(resume=True)
