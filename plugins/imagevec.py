"""``imagevec`` — multilingual word embeddings from image-text pairs (Singhal et al. 2019, arXiv 1905.12260).

A query (here an emoji's CLDR name or keyword) is the mean of the embeddings of its language-tagged tokens
(``en:back en:pain``); an image is ``ReLU(U·ReLU(V·f + b1) + b2)`` over its CNN features ``f``. Training
makes each query's cosine similarity to its own image win a softmax over every image in the batch, so
words of any language that name the same pictures end up close: no bilingual data is used.

Variants: ``imagevec`` (100-d), ``imagevec-300d``, ``imagevec-cooc`` (a free vector per training image
instead of its pixels: only co-occurrence), ``imagevec-cooc-multi`` (co-occurrence on images with queries
in >= 2 languages) and ``imagevec-unaware`` (no language tags: one embedding per surface form), all on
emoji; ``imagevec-m30k`` (the 700 multi30k-mini train photos and their ResNet-50 features, captions in
en/de/fr/cs) and ``imagevec-m30k-cooc`` (co-occurrence on the 29,000 Multi30k train images, whose
features are not available: their captions in en/de/fr/cs). ``train_data`` picks the source
(``mmbench.train.corpora.SOURCES``). With all 109 emoji languages every training concept is named in >= 2 of
them, so ``imagevec-cooc-multi`` trains on exactly the pairs of ``imagevec-cooc`` there (identical
scores); the subset bites once ``languages`` is narrowed (e.g. en + yo) or on data with monolingual
images, as in the paper's search logs.

Vocabulary: tokens seen in >= ``min_count`` distinct training queries (default 1: every training token,
which the word-similarity sets need); with ``min_count`` > 1 rarer tokens share ``oov_buckets`` hashed rows
so training still sees every query whole. At evaluation ``embed_words`` reports only vocabulary words as
found (a bucket is a blend of unrelated rare words, not a word's vector), while ``embed_texts`` hashes
unknown tokens as training did (``text_oov="bucket"``) or drops them (``"drop"``; an all-unknown text
then embeds as zeros). With ``min_count=1`` no training token is hashed and the buckets keep their random
start: unknown words get distinct but uninformative vectors (emoji val rsum 187 vs 178 for dropping them,
as an all-zero text ties with every image).

``track_alignment = ["en-de"]`` logs the AME alignment ratio (CSLS top-1 of a lexicon's source words
over the whole target vocabulary) every ``track_every`` steps to the trainer's ``metrics.jsonl`` as
``alignment_ratio/en-de``; it never stops training early. Lexicon: the MUSE 0-5000 train dictionary
under the data root, else emoji concepts named by one word in both languages (``note/...`` says which).

Training writes ``<work_dir>/train/``: the trainer's checkpoints (safetensors weights) and metrics, and
``imagevec.json`` (vocabulary and shapes), which is all ``mmbench eval`` needs besides the weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal


import mmbench
from mmbench.errors import ConfigError
from mmbench.text import tokenize
from mmbench.train.config import TrainConfig
from mmbench.train.lifecycle import TrainedModel, TrainingRun
from mmbench.train.corpora import SEEN_DATA, SOURCES, build_pairs
from mmbench.train.vocabulary import Vocabulary, WordTableEmbeddings, token_key  # noqa: F401 (imagevec.token_key)

if TYPE_CHECKING:
    from mmbench_plugins.imagevec_net import ImageVecNet

STATE_FORMAT = "mmbench-imagevec"
STATE_VERSION = 1
STATE_FILE = "imagevec.json"  # next to the trainer's checkpoints/ in <work_dir>/train/


@dataclass(frozen=True)
class ImageVecConfig:
    dim: int = 100  # embedding size n (100 or 300 in the paper)
    hidden: int = 200  # image MLP hidden size m
    image_encoder: Literal["features", "cooc"] = "features"  # cooc: a free vector per training image
    language_tags: bool = True  # False: "imagevec-unaware", identical spellings share one embedding
    languages: tuple[str, ...] = ()  # training languages; empty: all
    min_image_languages: int = 1  # keep images with queries in >= this many languages (2: multilingual)
    min_count: int = 1  # vocabulary: tokens in >= this many distinct training queries
    oov_buckets: int = 10_000  # hashed rows shared by rarer tokens (paper: 1,000,000); 0: none
    text_oov: Literal["bucket", "drop"] = "bucket"  # unknown tokens in embed_texts: hashed, or dropped
    temperature: float = 0.1  # softmax over cosine / temperature (1.0: raw cosine)
    symmetric: bool = False  # also an image->query softmax (the paper: query->image only)
    init_std: float = 0.1  # word embeddings start N(0, init_std^2)
    train_data: str = "emoji"  # a key of mmbench.train.corpora.SOURCES: emoji, multi30k (cooc only), multi30k-mini
    # Language pairs ("en-de") whose alignment ratio (AME) is logged every track_every steps; () = off.
    # One evaluation scores every target word against every source word: ~2 s on one core for the
    # 300-d imagevec-m30k-cooc (18k German x 10k English words), ~0.1 s for emoji's 2.5k-word languages.
    track_alignment: tuple[str, ...] = ()
    track_every: int = 100
    # Chosen on the emoji val split (mean rsum over 9 languages, 190 with these): lr 0.01 (0.03: -3, 0.1: -4),
    # temperature 0.1 (0.05: -9, 0.2: -3.5, 1.0: about -40), query->image only (symmetric: -40), one epoch
    # (two: -8), no clipping (Adam ignores the gradient's scale; a 25M-row gradient norm costs 8 ms a step).
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=1, batch_size=1000, lr=0.01,
                                                                   grad_clip=None))

    def __post_init__(self) -> None:
        for name in ("dim", "hidden", "min_count", "min_image_languages", "track_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.oov_buckets < 0 or not self.temperature > 0 or not self.init_std > 0:
            raise ValueError("oov_buckets must be >= 0, temperature and init_std > 0")
        if self.train_data not in SOURCES:
            raise ValueError(f"unknown train_data {self.train_data!r} (known: {', '.join(SOURCES)})")
        for pair in self.track_alignment:
            if len(pair.split("-")) != 2 or not all(pair.split("-")):
                raise ValueError(f"track_alignment: give language pairs as SRC-TGT (en-de), got {pair!r}")


# The network, its loss and batching live in imagevec_net (they need torch); they are imported when a
# model trains or embeds, so registering these models (``mmbench --help``, ``mmbench list``) does not
# import torch. ``imagevec.ImageVecNet`` etc. still work (module ``__getattr__`` below).
_NET_NAMES = ("ImageVecNet", "ReusedDenseGrad", "alignment_tracker", "ranking_loss", "weighted_in_batch_softmax",
              "bags", "PairCollate")


def __getattr__(name: str) -> Any:
    if name in _NET_NAMES:
        from mmbench_plugins import imagevec_net

        return getattr(imagevec_net, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ImageVec(WordTableEmbeddings, TrainedModel):
    """Bag-of-words query embeddings trained to pick their image in a batch (Singhal et al. 2019)."""

    name = "imagevec"
    Config = ImageVecConfig
    capabilities = frozenset({mmbench.Capability.WORDS, mmbench.Capability.TEXT, mmbench.Capability.IMAGES,
                              mmbench.Capability.TRAINABLE})

    def __init__(self, config: Any = None, argument: str | None = None):
        super().__init__(config, argument)
        if self.config.image_encoder == "cooc":  # set through --set on a features variant
            self.capabilities = self.capabilities - {mmbench.Capability.IMAGES}

    state_format, state_version, state_file = STATE_FORMAT, STATE_VERSION, STATE_FILE
    load_checks = ("dim", "hidden", "image_encoder")
    _training_on_cpu = False

    def seen_data(self) -> frozenset[str]:
        return SEEN_DATA.get(self.config.train_data, frozenset())

    # -- train or load (the lifecycle is mmbench.train.lifecycle's) ---------------------------------
    def training_data(self, ctx: mmbench.RunContext) -> tuple[dict[str, Any], Any]:
        config = self.config
        pairs = build_pairs(config.train_data, config.languages, min_image_languages=config.min_image_languages,
                            tokenize=tokenize, data_dir=ctx.data_dir)
        if config.image_encoder == "features" and pairs.image_features.shape[1] == 0:
            raise ConfigError(f"imagevec: train_data {config.train_data!r} has no image features; "
                              f"train a co-occurrence model on it (image_encoder=cooc, e.g. imagevec-m30k-cooc)")
        vocabulary = Vocabulary.build(pairs, min_count=config.min_count, tagged=config.language_tags,
                                      buckets=config.oov_buckets)
        state = {"dim": config.dim, "hidden": config.hidden, "image_encoder": config.image_encoder,
                 "feature_source": pairs.feature_source, "feature_dim": int(pairs.image_features.shape[1]),
                 "n_images": len(pairs.image_ids), "n_pairs": len(pairs), "vocabulary": vocabulary.to_json()}
        return state, (pairs, vocabulary)

    def build_net(self, state: dict[str, Any], *, training: bool = False) -> ImageVecNet:
        """``training``: on one CPU process the word gradient is a reused buffer whose touched rows are
        zeroed (bit-identical to zeroing it all, 0.86x the step time: docs/performance.md)."""
        from mmbench.train.distributed import env_world_size
        from mmbench_plugins.imagevec_net import ImageVecNet

        vocabulary = state["vocabulary"]
        cooc = state["image_encoder"] == "cooc"
        reuse = training and self._training_on_cpu and env_world_size() == 1
        return ImageVecNet(len(vocabulary["keys"]) + vocabulary["buckets"], state["dim"], state["hidden"],
                           feature_dim=state["feature_dim"], n_free_images=state["n_images"] if cooc else 0,
                           init_std=self.config.init_std, reuse_word_grad=reuse)

    def fit(self, net: ImageVecNet, data: Any, run: TrainingRun) -> None:
        import torch

        from mmbench.train import Objective, Trainer
        from mmbench_plugins.imagevec_net import PairCollate, alignment_tracker, ranking_loss

        config = self.config
        pairs, vocabulary = data
        tracked = [alignment_tracker(vocabulary, pair, every=config.track_every, data_dir=run.ctx.data_dir)
                   for pair in config.track_alignment]
        images = None if config.image_encoder == "cooc" else torch.from_numpy(pairs.image_features)
        query_rows = [vocabulary.rows(lang, tokens, bucket=True)
                      for lang, tokens in zip(pairs.query_languages, pairs.query_tokens)]
        data = (torch.from_numpy(pairs.pair_query), torch.from_numpy(pairs.pair_image))
        if pairs.pair_weight is not None:
            data += (torch.from_numpy(pairs.pair_weight),)
        objective = Objective("ranking", lambda module, batch: ranking_loss(
            module, batch, temperature=config.temperature, symmetric=config.symmetric))
        Trainer(net, objective, data, run.config, collate=PairCollate(query_rows, images, len(data) == 3),
                run_dir=run.dir, tracked=tracked).fit(resume=True)

    def prepare(self, ctx: mmbench.RunContext) -> None:
        self._training_on_cpu = ctx.device == "cpu"
        super().prepare(ctx)

    def ready(self) -> None:
        self.vocab = Vocabulary.from_json(self.state["vocabulary"])

    def image_encoder(self) -> Any:
        return self.net.encode_images

    def embedding_dim(self) -> int:
        return int(self.state["dim"])

    # -- embedding: languages, vocabulary, embed_words, embed_texts are WordTableEmbeddings' -----------------
    def bucket_unknown_tokens(self) -> bool:
        return self.config.text_oov == "bucket"


class ImageVecCooc(ImageVec):
    """ImageVec with a free vector per training image: learns from co-occurrence only, embeds no images."""

    capabilities = ImageVec.capabilities - {mmbench.Capability.IMAGES}


VARIANTS: dict[str, tuple[type[ImageVec], dict[str, Any], str]] = {
    "imagevec": (ImageVec, {}, "ImageVec, 100-d words and images (Singhal et al. 2019)"),
    "imagevec-300d": (ImageVec, {"dim": 300, "hidden": 300}, "ImageVec, 300-d"),
    "imagevec-cooc": (ImageVecCooc, {"image_encoder": "cooc"}, "ImageVec from image-query co-occurrence only"),
    "imagevec-cooc-multi": (ImageVecCooc, {"image_encoder": "cooc", "min_image_languages": 2},
                            "ImageVec co-occurrence on images with queries in >= 2 languages"),
    "imagevec-unaware": (ImageVec, {"language_tags": False}, "ImageVec without language tags"),
    # Chosen on the multi30k-mini val split (mean rsum over en/de/fr/cs, 100 images; 2 seeds 251, 256):
    # 300-d (100-d: 230), 5 epochs of 128 (2: 223, 8: 251; batch 256: 246-252), lr 0.01 (0.005: 240).
    "imagevec-m30k": (ImageVec, {"train_data": "multi30k-mini", "dim": 300, "hidden": 300,
                                 "train": {"epochs": 5, "batch_size": 128}},
                      "ImageVec on the 700 multi30k-mini train photos (captions en/de x5, fr, cs)"),
    # Chosen on the alignment ratio with the MUSE 0-5000 train dictionaries (en-de, en-fr, de-fr):
    # 300-d 0.51/0.66/0.53 vs 100-d 0.48/0.63/0.49; 5 epochs of 1000 (3: 0.46 en-de, 10: 0.49 at 100-d);
    # lr 0.01 (0.003: 0.40); temperature 0.1 (0.05: 0.44).
    "imagevec-m30k-cooc": (ImageVecCooc, {"image_encoder": "cooc", "train_data": "multi30k", "dim": 300,
                                          "hidden": 300, "train": {"epochs": 5}},
                           "ImageVec co-occurrence on the 29,000 Multi30k train images (en/de/fr/cs captions)"),
}


@mmbench.hookimpl
def register_models(register):
    for name, (cls, defaults, description) in VARIANTS.items():
        register(cls, name=name, defaults=defaults, description=description)
