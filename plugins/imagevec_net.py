"""ImageVec's network, loss and batching: the torch half of the ``imagevec`` plugin.

``plugins/imagevec.py`` registers the models and holds their config, vocabulary and train/embed
plumbing; it imports this module only when a model trains or embeds, so that registering plugins does
not import torch. See that module's docstring for the method.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from mmbench.errors import ConfigError
from mmbench.text import tokenize
from mmbench.train.bags import PairCollate, bags  # noqa: F401 (imagevec.PairCollate, imagevec.bags)
from mmbench.train.corpora import alignment_lexicon
from mmbench.train.distributed import gather_with_offset
from mmbench.train.grads import ReusedDenseGrad  # noqa: F401 (imagevec.ReusedDenseGrad)
from mmbench.train.losses import in_batch_softmax
from mmbench.train.tracking import TrackedMetric, alignment_ratio_metric

if TYPE_CHECKING:
    from mmbench_plugins.imagevec import Vocabulary


class ImageVecNet(torch.nn.Module):
    """Bag-of-words query encoder and image encoder (MLP over features, or a free vector per image)."""

    def __init__(self, n_rows: int, dim: int, hidden: int, *, feature_dim: int = 0, n_free_images: int = 0,
                 init_std: float = 0.1, reuse_word_grad: bool = False):
        super().__init__()
        self.words = torch.nn.EmbeddingBag(n_rows, dim, mode="mean", sparse=reuse_word_grad)
        # Small starting vectors let Adam's fixed-size steps move them far (N(0, 1): val rsum 145 vs 168).
        torch.nn.init.normal_(self.words.weight, std=init_std)
        if reuse_word_grad:
            self.words.weight.register_post_accumulate_grad_hook(ReusedDenseGrad(self.words.weight))
        if n_free_images:
            self.images: torch.nn.Module = torch.nn.Embedding(n_free_images, dim)
        else:
            self.images = torch.nn.Sequential(torch.nn.Linear(feature_dim, hidden), torch.nn.ReLU(),
                                              torch.nn.Linear(hidden, dim), torch.nn.ReLU())

    def encode_queries(self, tokens: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self.words(tokens, offsets)

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        return self.images(images)


def alignment_tracker(vocabulary: Vocabulary, pair: str, *, every: int, data_dir: Path) -> TrackedMetric:
    """``alignment_ratio/<src>-<tgt>``: CSLS top-1 of lexicon source words over the whole target vocabulary."""
    source, target = pair.split("-")
    missing = [lang for lang in (source, target) if lang not in vocabulary.words]
    if missing:
        raise ConfigError(f"imagevec: track_alignment {pair!r}: not training on {', '.join(missing)} "
                          f"(training languages: {', '.join(vocabulary.words)})")
    lexicon, note = alignment_lexicon(source, target, vocabulary.words, data_dir=data_dir, tokenize=tokenize)
    source_words, target_words = vocabulary.words[source], vocabulary.words[target]
    source_index = {word: i for i, word in enumerate(source_words)}
    target_index = {word: i for i, word in enumerate(target_words)}
    queries = {source_index[word]: [target_index[t] for t in golds] for word, golds in lexicon.items()}
    rows = {lang: torch.tensor([vocabulary.index[vocabulary.key(lang, w)] for w in vocabulary.words[lang]])
            for lang in (source, target)}

    def vectors(language: str):
        return lambda net: net.words.weight[rows[language].to(net.words.weight.device)]

    return TrackedMetric(f"alignment_ratio/{pair}", alignment_ratio_metric(vectors(source), vectors(target), queries),
                         every=every, note=note)


def ranking_loss(net: ImageVecNet, batch: dict[str, torch.Tensor], *, temperature: float,
                 symmetric: bool) -> torch.Tensor:
    """-log softmax of each query's cosine with its image among all images of the (global) batch."""
    queries = net.encode_queries(batch["tokens"], batch["offsets"])
    images = net.encode_images(batch["images"])
    if "weight" not in batch:
        return in_batch_softmax(queries, images, temperature=temperature, symmetric=symmetric)
    return weighted_in_batch_softmax(queries, images, batch["weight"], temperature=temperature,
                                     symmetric=symmetric)


def weighted_in_batch_softmax(queries: torch.Tensor, items: torch.Tensor, weight: torch.Tensor, *,
                              temperature: float, symmetric: bool) -> torch.Tensor:
    """``in_batch_softmax`` (cosine) with each pair's loss multiplied by its weight; mean over rows."""
    queries, items = F.normalize(queries, dim=-1), F.normalize(items, dim=-1)
    all_items, start = gather_with_offset(items)
    targets = torch.arange(start, start + queries.shape[0], device=queries.device)
    losses = F.cross_entropy(queries @ all_items.T / temperature, targets, reduction="none")
    if symmetric:
        all_queries, _ = gather_with_offset(queries)
        losses = 0.5 * (losses + F.cross_entropy(items @ all_queries.T / temperature, targets, reduction="none"))
    return (losses * weight).mean()
