"""``ame`` — Aligning Multilingual word Embeddings for cross-modal retrieval (Mohammadshahi, Lebret and
Aberer 2019), trained through the shared trainer. Facts from the authors' code (AME-CMR) where paper and
code differ.

**Network.** One language-tagged word table (300-d, per-language unknown rows, words seen >= ``min_count``
times in the training captions); each token vector goes through its language's 300x300 mapping, then one
GRU (300 -> ``hidden``) shared by all languages; a caption is the GRU's last valid state, L2-normalised.
An image is ``Linear(features -> hidden)`` (Xavier), L2-normalised; ``image_encoder = "cooc"`` learns a
free vector per training image instead (co-occurrence only: the model then embeds no image features).

**Losses.** ``ranking``: the bidirectional hinge (margin 0.2) summed over the batch's negatives, or its
hardest negative (``max_violation``), with cosine ("symmetric") or order ("asymmetric") similarity
(:mod:`mmbench.train.ame_losses`). ``align``: RCSLS (:func:`mmbench.train.alignment.rcsls_loss`, k = 10
over both full vocabularies) between English and every other language on the MUSE training lexicon,
updating only the mapping matrices (which the ranking loss leaves alone, as in the authors' code), with
plain SGD at ``align_lr`` (the code: 12) halved whenever the
loss rises (:class:`~mmbench.train.ame_losses.HalvingStep`, kept in the checkpoint). The lexicon
(``lexicon = "clean"``) is the full MUSE dictionary without the muse-bli test words of either direction;
``"authors"`` adds the 5000-6500 test pairs as the released code does, and declares them seen.

**Initial word vectors** (``init``): ``"skipgram"`` (the first-party aligned skip-gram on the Multi30k
train captions, :func:`mmbench.train.skipgram.aligned_skipgram_vectors`, cached), ``"random"``, or a
vectors file as ``vectors:`` takes it (``en:``-prefixed words, or ``en=a.vec,de=b.vec``). Words without a
vector start N(0, ``init_std``²). The mappings start at the orthogonal Procrustes map of each language
onto English over the training lexicon (identity for ``init = "random"``, where it would be noise).

Variants: ``ame`` (cosine), ``ame-order``, ``ame-fme`` (initial vectors frozen, no alignment loss: FME),
``ame-mono`` and ``ame-mono-de`` (English or German captions only), ``ame-noalign`` (vectors fine-tuned, no alignment
loss), ``ame-cooc`` (free image vectors on the 29,000 Multi30k train images) and ``ame-paper`` (the
paper's settings, for a GPU). Defaults are sized for 2 CPU cores on multi30k-mini; see docs/ame.md.
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
from mmbench.train.captions import SEEN_DATA, CaptionVocabulary, lexicon_seen_data
from mmbench.train.config import TrainConfig
from mmbench.train.lifecycle import TrainedModel, TrainingRun

STATE_FILE = "ame.json"
STATE_FORMAT, STATE_VERSION = "mmbench-ame", 1
PIVOT = "en"


@dataclass(frozen=True)
class AMEConfig:
    train_data: Literal["multi30k-mini", "multi30k", "coco"] = "multi30k-mini"
    languages: tuple[str, ...] = ("en", "de")
    min_count: int = 4  # vocabulary: tokens seen >= this often in a language's training captions
    dim: int = 300  # word vectors
    hidden: int = 256  # GRU state = joint space (the paper: 1024; ame-paper)
    init: str = "skipgram"  # skipgram | random | a vectors file (vectors:PATH syntax)
    init_std: float = 0.05  # N(0, init_std^2) for words without an initial vector
    freeze_words: bool = False  # FME: the initial vectors are not trained
    image_encoder: Literal["features", "cooc"] = "features"
    similarity: Literal["cosine", "order"] = "cosine"
    margin: float = 0.2
    max_violation: bool = False
    align: bool = True  # the RCSLS alignment objective
    align_lr: float = 12.0
    align_every: int = 1
    align_k: int = 10
    lexicon: Literal["clean", "authors"] = "clean"
    track_every: int = 50  # alignment ratio (en-X) logged every this many steps; 0: off
    shuffle_pairs: bool = False  # a control: every caption paired with a random other image (seeded)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        epochs=8, batch_size=128, lr=1e-3, grad_clip=2.0, schedule="step", step_epochs=6))

    def __post_init__(self) -> None:
        object.__setattr__(self, "languages", tuple(self.languages))
        if not self.languages or len(set(self.languages)) != len(self.languages):
            raise ValueError(f"languages must be distinct and non-empty, got {self.languages}")
        for name in ("min_count", "dim", "hidden", "align_every", "align_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (self.margin >= 0 and self.align_lr > 0 and self.init_std > 0 and self.track_every >= 0):
            raise ValueError("margin and track_every must be >= 0; align_lr and init_std > 0")

    @property
    def aligned(self) -> bool:
        return self.align and not self.freeze_words and PIVOT in self.languages and len(self.languages) > 1


def ranking_loss(net: Any, batch: dict[str, Any], config: AMEConfig) -> Any:
    """Hinge ranking of each caption against its image (both directions) over the batch."""
    from mmbench.train.ame_losses import hinge_ranking

    captions = net.text(batch["tokens"], batch["lengths"], batch["languages"])
    return hinge_ranking(net.image(batch["images"]), captions, margin=config.margin,
                         max_violation=config.max_violation, similarity=config.similarity)


def alignment_loss(net: Any, lexicons: list[tuple[int, int, Any, Any, Any, Any]], k: int) -> Any:
    """Mean RCSLS loss over the language pairs: unit word rows through their (trainable) mappings, renormalised
    (both sides are mapped, so on raw dot products the loss falls without bound as the mappings grow: -400
    after 80 steps at lr 12); the gradient is scaled by the halving factor (``net.align_step``)."""
    import torch.nn.functional as F

    from mmbench.train.alignment import rcsls_loss

    losses = []
    for src, tgt, src_pool, tgt_pool, src_rows, tgt_rows in lexicons:
        text = net.text
        src_all = F.normalize(text.mapped_words(src_pool, src, normalize_rows=True, detach=True), dim=-1)
        tgt_all = F.normalize(text.mapped_words(tgt_pool, tgt, normalize_rows=True, detach=True), dim=-1)
        losses.append(rcsls_loss(src_all[src_rows], tgt_all[tgt_rows], src_all, tgt_all, k=k))
    return net.align_step.scaled(sum(losses) / len(losses))


class AME(TrainedModel):
    """A GRU caption encoder over aligned multilingual word vectors, ranked against images."""

    name = "ame"
    Config = AMEConfig
    capabilities = frozenset({mmbench.Capability.TEXT, mmbench.Capability.IMAGES, mmbench.Capability.WORDS,
                              mmbench.Capability.TRAINABLE})
    state_format, state_version, state_file = STATE_FORMAT, STATE_VERSION, STATE_FILE
    load_checks = ("dim", "hidden", "image_encoder")

    def __init__(self, config: Any = None, argument: str | None = None):
        super().__init__(config, argument)
        if self.config.image_encoder == "cooc":
            self.capabilities = self.capabilities - {mmbench.Capability.IMAGES}

    def seen_data(self) -> frozenset[str]:
        config = self.config
        seen = set(SEEN_DATA[config.train_data])
        if config.aligned:
            for lang in config.languages:
                if lang != PIVOT:
                    seen |= lexicon_seen_data(PIVOT, lang, config.lexicon)
        if config.init == "skipgram":
            seen |= _skipgram_config(config).seen_data()
        return frozenset(seen)

    # -- train or load (the lifecycle is mmbench.train.lifecycle's) ---------------------------------
    def training_data(self, ctx: mmbench.RunContext) -> tuple[dict[str, Any], Any]:
        from mmbench.train.captions import caption_image_pairs

        config = self.config
        cooc = config.image_encoder == "cooc"
        pairs = caption_image_pairs(config.train_data, "train", config.languages, data_dir=ctx.data_dir,
                                    tokenize=tokenize, features=not cooc,
                                    shuffle_seed=ctx.seed if config.shuffle_pairs else None)
        vocab = CaptionVocabulary.build(pairs.languages, pairs.tokens, min_count=config.min_count)
        state = {"dim": config.dim, "hidden": config.hidden, "image_encoder": config.image_encoder,
                 "feature_source": pairs.feature_source, "feature_dim": int(pairs.features.shape[1]),
                 "n_images": len(pairs.image_ids), "n_captions": len(pairs), "shuffled_pairs": config.shuffle_pairs,
                 "vocabulary": vocab.to_json()}
        return state, (pairs, vocab)

    def build_net(self, state: dict[str, Any], *, training: bool = False) -> Any:
        return build_net(state)

    def fit(self, net: Any, data: Any, run: TrainingRun) -> None:
        import torch

        from mmbench.train import Trainer, Validator
        from mmbench.train.captions import PaddedCaptions

        config, ctx = self.config, run.ctx
        pairs, vocab = data
        cooc = config.image_encoder == "cooc"
        lexicons = {lang: _lexicon(ctx.data_dir, lang, vocab, config) for lang in vocab.languages
                    if lang != PIVOT and PIVOT in vocab.languages and (config.aligned or config.init != "random")}
        _initialise(net, vocab, config, lexicons, ctx)
        if config.freeze_words:
            net.text.words.weight.requires_grad_(False)

        languages = vocab.languages
        position = {lang: i for i, lang in enumerate(languages)}
        collate = PaddedCaptions([vocab.rows(lang, tokens) for lang, tokens in zip(pairs.languages, pairs.tokens)],
                                 [position[lang] for lang in pairs.languages],
                                 None if cooc else torch.tensor(pairs.features), pairs.image)
        align_pairs = _alignment_pairs(vocab, lexicons, run.config.device) if config.aligned else []
        objectives = training_objectives(config, align_pairs)
        validator = None if cooc else Validator(_val_rsum(config, vocab, ctx.data_dir), name="rsum")
        tracked = _alignment_trackers(vocab, config, ctx.data_dir) if config.track_every else []
        if config.track_every and config.aligned:  # the trainer logs lr/align = align_lr; this is its factor
            from mmbench.train import TrackedMetric

            tracked.append(TrackedMetric("align_lr_factor", lambda module: float(module.align_step.factor),
                                         every=config.track_every))
        Trainer(net, objectives, (torch.arange(len(pairs)),), run.config, collate=collate, run_dir=run.dir,
                validator=validator, tracked=tracked).fit(resume=True)

    def ready(self) -> None:
        self.vocab = CaptionVocabulary.from_json(self.state["vocabulary"])

    # -- embeddings ---------------------------------------------------------------------------------
    def languages(self) -> list[str]:
        return self.vocab.languages

    def similarity(self) -> str:
        """Scored as trained: cosine, or the order score of ``ame-order`` (a protocol variant)."""
        return self.config.similarity

    def _position(self, language: str) -> int:
        if language not in self.vocab.words:
            raise mmbench.Incompatible(f"ame was trained on {', '.join(self.vocab.languages)}, not {language!r}")
        return self.vocab.languages.index(language)

    def vocabulary(self, language: str) -> list[str]:
        self._position(language)
        return list(self.vocab.words[language])

    def embed_words(self, words: Sequence[str], language: str) -> tuple[np.ndarray, np.ndarray]:
        """Each word's vector through its language's mapping (the space the GRU reads)."""
        import torch

        position = self._position(language)
        rows = [self.vocab.row(language, word.lower()) for word in words]
        found = np.array([r is not None for r in rows], dtype=bool)
        out = np.zeros((len(words), self.state["dim"]), dtype=np.float32)
        if found.any():
            with torch.inference_mode():
                index = torch.tensor([r for r in rows if r is not None], device=self.device)
                out[found] = self.net.text.mapped_words(index, position).float().cpu().numpy()
        return out, found

    def embed_texts(self, texts: Sequence[str], language: str) -> np.ndarray:
        from mmbench.train.captions import PaddedCaptions

        position = self._position(language)
        if not texts:
            return np.zeros((0, self.state["hidden"]), dtype=np.float32)
        collate = PaddedCaptions([self.vocab.rows(language, tokenize(t)) or self.vocab.rows(language, ["<unk>"])
                                  for t in texts], [position] * len(texts), None, np.zeros(len(texts)))
        return _encode_captions(self.net, collate, self.device).numpy()


class AMECooc(AME):
    """AME with a free vector per training image: learns from co-occurrence only, embeds no image features."""

    capabilities = AME.capabilities - {mmbench.Capability.IMAGES}


# -- pieces ---------------------------------------------------------------------------------------------
def build_net(state: dict[str, Any]) -> Any:
    """The network for a saved ``state`` (vocabulary and shapes): ``text``, ``image``, ``align_step``."""
    import torch

    from mmbench.train.ame_losses import HalvingStep
    from mmbench.train.encoders import LinearImageEncoder, MappedGRUEncoder

    vocab = CaptionVocabulary.from_json(state["vocabulary"])
    net = torch.nn.Module()
    net.text = MappedGRUEncoder(len(vocab), len(vocab.languages), dim=state["dim"], hidden=state["hidden"])
    net.image = LinearImageEncoder(state["feature_dim"], state["hidden"],
                                   n_free_images=state["n_images"] if state["image_encoder"] == "cooc" else 0)
    net.align_step = HalvingStep()
    return net


def _encode_captions(net: Any, collate: Any, device: Any, batch_size: int = 1024) -> Any:
    import torch

    from mmbench.train import encode

    def fn(index: torch.Tensor) -> torch.Tensor:
        batch = collate(index)
        return net.text(batch["tokens"].to(device), batch["lengths"], batch["languages"].to(device)).float()

    return encode(fn, torch.arange(len(collate.lengths)), batch_size).float()


def _skipgram_config(config: AMEConfig) -> Any:
    from mmbench.train.skipgram import SkipgramConfig

    return SkipgramConfig(languages=tuple(dict.fromkeys((PIVOT, *config.languages))), dim=config.dim)


def _lexicon(data_dir: Path, lang: str, vocab: CaptionVocabulary, config: AMEConfig) -> list[tuple[str, str]]:
    from mmbench.train.captions import training_lexicon

    return training_lexicon(Path(data_dir), PIVOT, lang, vocab, split=config.lexicon)[0]


def training_objectives(config: AMEConfig, align_pairs: list[Any]) -> list[Any]:
    """The trainer's objectives: ``ranking`` every step (everything but the mappings) and, given alignment
    pairs, ``align`` (RCSLS, plain SGD at ``align_lr``, the mappings only). As in the authors' code, the
    mappings are not updated by the ranking loss (R_ende/R_deen there have requires_grad=False and move
    only by the RCSLS step); the word table not by the alignment. Also what benchmarks/bench_ame.py times."""
    from mmbench.train import Objective

    objectives = [Objective("ranking", lambda module, batch: ranking_loss(module, batch, config),
                            params=lambda name: name != "text.mappings")]
    if align_pairs:
        objectives.append(Objective("align", lambda module, batch: alignment_loss(module, align_pairs, config.align_k),
                                    params=lambda name: name == "text.mappings", every=config.align_every,
                                    optimizer="sgd", lr=config.align_lr, momentum=0.0, weight_decay=0.0))
    return objectives


def _alignment_pairs(vocab: CaptionVocabulary, lexicons: dict[str, list[tuple[str, str]]], device: str) -> list[Any]:
    """Per language pair: (pivot position, language position, pivot rows, language rows, lexicon source
    and target indices into those rows), on the training device."""
    import torch

    position = {lang: i for i, lang in enumerate(vocab.languages)}
    pairs = []
    for lang, lexicon in lexicons.items():
        if lexicon:
            src_at = {w: i for i, w in enumerate(vocab.words[PIVOT])}
            tgt_at = {w: i for i, w in enumerate(vocab.words[lang])}
            pairs.append((position[PIVOT], position[lang], torch.tensor(vocab.language_rows(PIVOT)),
                          torch.tensor(vocab.language_rows(lang)), torch.tensor([src_at[s] for s, _ in lexicon]),
                          torch.tensor([tgt_at[t] for _, t in lexicon])))
    if not pairs:
        raise ConfigError("ame: no MUSE word pair of the training lexicon is in the caption vocabulary; "
                          "train without the alignment loss (ame-noalign) or lower min_count")
    device = torch.device(device if device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    return [tuple(x.to(device) if isinstance(x, torch.Tensor) else x for x in p) for p in pairs]


def _initialise(net: Any, vocab: CaptionVocabulary, config: AMEConfig, lexicons: dict[str, list[tuple[str, str]]],
                ctx: mmbench.RunContext) -> None:
    """Initial word vectors (``config.init``) and Procrustes-initialised mappings onto English."""
    import torch

    from mmbench.train.alignment import procrustes

    weight = net.text.words.weight
    with torch.no_grad():
        torch.nn.init.normal_(weight, std=config.init_std)
        weight[0].zero_()
    if config.init == "random":
        return
    lookup = _initial_vectors(config, ctx)  # may train the skip-gram vectors: not under no_grad
    with torch.no_grad():
        for lang in vocab.languages:
            vectors, found = lookup(vocab.words[lang], lang)
            if vectors.shape[1] != config.dim:
                raise ConfigError(f"ame: initial vectors are {vectors.shape[1]}-d, dim is {config.dim}")
            rows = torch.tensor(vocab.language_rows(lang))[torch.from_numpy(found)]
            weight[rows] = torch.from_numpy(vectors[found]).to(weight.dtype)
        position = {lang: i for i, lang in enumerate(vocab.languages)}
        for lang, lexicon in lexicons.items():
            if lexicon:
                src = torch.nn.functional.normalize(weight[[vocab.row(PIVOT, s) for s, _ in lexicon]], dim=-1)
                tgt = torch.nn.functional.normalize(weight[[vocab.row(lang, t) for _, t in lexicon]], dim=-1)
                net.text.mappings[position[lang]] = procrustes(tgt, src)  # lang -> English space


def _initial_vectors(config: AMEConfig, ctx: mmbench.RunContext) -> Any:
    """``(words, language) -> (vectors, found)`` for the configured initial vectors."""
    if config.init == "skipgram":
        from mmbench.train.skipgram import aligned_skipgram_vectors

        vectors = aligned_skipgram_vectors(_skipgram_config(config), ctx.data_dir, seed=ctx.seed)
        return lambda words, lang: vectors.embed_words(words, lang)
    from mmbench_plugins.vectors import WordVectors

    model = WordVectors(argument=config.init)
    model.prepare(ctx)
    return model.embed_words


def _val_rsum(config: AMEConfig, vocab: CaptionVocabulary, data_dir: Path) -> Any:
    """Validation metric: the sum over languages of rsum (image<->caption) on the ``val`` split."""
    import torch

    from mmbench.metrics.retrieval import retrieval_scores
    from mmbench.train import encode
    from mmbench.train.captions import PaddedCaptions, caption_image_pairs

    pairs = caption_image_pairs(config.train_data, "val", config.languages, data_dir=data_dir, tokenize=tokenize)
    features = torch.tensor(pairs.features)
    per_language = []
    for lang in vocab.languages:
        chosen = [i for i, x in enumerate(pairs.languages) if x == lang]
        counts = np.bincount(pairs.image[chosen], minlength=len(pairs.image_ids))
        if len(set(counts.tolist())) != 1 or np.any(np.diff(pairs.image[chosen]) < 0):
            continue  # an empty caption: groups are uneven, this language is not validated
        collate = PaddedCaptions([vocab.rows(lang, pairs.tokens[i]) for i in chosen],
                                 [vocab.languages.index(lang)] * len(chosen), None, np.zeros(len(chosen)))
        per_language.append((lang, collate, int(counts[0])))

    def metric(net: Any) -> dict[str, float]:
        """``rsum`` (summed over languages) selects the checkpoint; R@1 per language and direction is
        logged beside it (the paper's Figure 2 plots R@1)."""
        device = next(net.parameters()).device
        images = encode(net.image, features, 1024, device)
        out = {"rsum": 0.0}
        for lang, collate, k in per_language:
            scores = retrieval_scores(images, _encode_captions(net, collate, device), captions_per_image=k,
                                      similarity=config.similarity)
            out["rsum"] += scores["rsum"]
            out[f"t2i_r1/{lang}"], out[f"i2t_r1/{lang}"] = scores["t2i_r1"], scores["i2t_r1"]
        return out

    return metric


def _alignment_trackers(vocab: CaptionVocabulary, config: AMEConfig, data_dir: Path) -> list[Any]:
    """``alignment_ratio/en-X``: share of the test dictionary's source words whose nearest (cosine) target
    word is a gold translation; out-of-vocabulary source words count as misses (the paper's ratio)."""
    import torch

    from mmbench.data.muse import load_muse_dictionary, muse_dictionary_path
    from mmbench.train import TrackedMetric, alignment_ratio_metric

    trackers = []
    position = {lang: i for i, lang in enumerate(vocab.languages)}
    for lang in vocab.languages:
        if lang == PIVOT or PIVOT not in vocab.languages:
            continue
        path = muse_dictionary_path(Path(data_dir), PIVOT, lang, "test" if config.lexicon == "clean" else "train")
        if not path.is_file():
            continue
        dictionary = load_muse_dictionary(path)
        pairs = list(zip(dictionary["source"][:], dictionary["target"][:]))
        n_sources = len({s for s, _ in pairs})
        src_at = {w: i for i, w in enumerate(vocab.words[PIVOT])}
        tgt_at = {w: i for i, w in enumerate(vocab.words[lang])}
        queries: dict[int, list[int]] = {}
        for s, t in pairs:
            if s in src_at and t in tgt_at:
                queries.setdefault(src_at[s], []).append(tgt_at[t])
        if not queries:
            continue
        src_rows, tgt_rows = torch.tensor(vocab.language_rows(PIVOT)), torch.tensor(vocab.language_rows(lang))

        def vectors(rows: torch.Tensor, language: int) -> Any:
            return lambda net: net.text.mapped_words(rows.to(net.text.mappings.device), language)

        ratio = alignment_ratio_metric(vectors(src_rows, position[PIVOT]), vectors(tgt_rows, position[lang]),
                                       queries, method="nn")
        share = len(queries) / n_sources
        trackers.append(TrackedMetric(f"alignment_ratio/{PIVOT}-{lang}", lambda net, r=ratio, s=share: r(net) * s,
                                      every=config.track_every,
                                      note=f"MUSE {path.name}: {len(queries)} of {n_sources} source words in the "
                                           f"vocabulary (the others count as misses); cosine top-1"))
    return trackers


# The paper's settings (batch 128, Adam 1.1e-4 / 10 at epoch 15 of 30, clip 2, validation every 500 steps).
PAPER_TRAIN = {"epochs": 30, "batch_size": 128, "lr": 1.1e-4, "schedule": "step", "step_epochs": 15,
               "grad_clip": 2.0, "val_every": 500}

COOC = {"image_encoder": "cooc", "train_data": "multi30k", "align_every": 20, "train": {"epochs": 1}}

VARIANTS: dict[str, tuple[dict[str, Any], str]] = {
    "ame": ({}, "AME: GRU over aligned multilingual word vectors, hinge ranking + RCSLS alignment (cosine)"),
    "ame-order": ({"similarity": "order"}, "AME with the asymmetric (order) similarity"),
    "ame-fme": ({"freeze_words": True, "align": False}, "FME: AME with frozen initial vectors, no alignment loss"),
    "ame-mono": ({"languages": ("en",)}, "AME on the English captions only (Mono)"),
    "ame-mono-de": ({"languages": ("de",)}, "AME on the German captions only (Mono)"),
    "ame-noalign": ({"align": False}, "AME without the alignment loss (vectors fine-tuned)"),
    # One epoch over the 290,000 task-2 captions (2,266 steps): a seed in well under the hour on 2 CPU
    # cores; more epochs with --set train.epochs=N. The alignment step runs every 20 steps (the paper's
    # "every N iterations"): RCSLS over the full Multi30k vocabularies (~10k words a language) every step
    # made a step 2.6 s instead of ~0.3 s here.
    "ame-cooc": ({**COOC}, "AME with a free vector per Multi30k train image (29,000 images, co-occurrence only)"),
    "ame-fme-cooc": ({**COOC, "freeze_words": True, "align": False}, "FME on the 29,000 Multi30k train images "
                                                                     "(co-occurrence only)"),
    "ame-noalign-cooc": ({**COOC, "align": False}, "AME without the alignment loss on the 29,000 Multi30k train "
                                                   "images (co-occurrence only)"),
    # COCO (Karpathy train + restval, English): needs coco/dataset_coco.json and the features of the COCO cards.
    "ame-coco": ({"train_data": "coco", "languages": ("en",)}, "AME trained on COCO (Karpathy train + restval, "
                                                               "English; the user's data)"),
    "ame-paper": ({"hidden": 1024, "train": PAPER_TRAIN},
                  "AME with the paper's training settings (GRU 1024, 30 epochs; for a GPU)"),
}


@mmbench.hookimpl
def register_models(register):
    for name, (defaults, description) in VARIANTS.items():
        cls = AMECooc if defaults.get("image_encoder") == "cooc" else AME
        register(cls, name=name, defaults=defaults, description=description)
