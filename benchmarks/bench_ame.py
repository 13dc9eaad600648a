"""AME training throughput (captions/s) through the shared ``Trainer``, against the same network and
objectives run by hand on the same batches, measured in the same run (``training_throughput.py``).

Workload: ``plugins/ame.py``'s ``build_net`` for a state built from the real multi30k-mini training
captions (7,000 en + de captions of 700 photos, ResNet-50 features, the caption vocabulary at
``min_count`` 4 and the clean MUSE en-de training lexicon, as ``ame``'s ``prepare`` builds them; a
synthetic stand-in of the same shapes when the data is absent, said in the notes). Word table
initialised as ``init = "random"`` does (the values do not change the arithmetic). The two objectives as
the plugin wires them: ``ranking`` (``ame.ranking_loss``: bidirectional hinge, every step, fused Adam
on everything but the mappings, clipping at 2) and ``align`` (``ame.alignment_loss``: RCSLS, k = 10 over
both full vocabularies, every ``align_every`` = 1 step, SGD at ``align_lr`` on the mappings only).
Default config: GRU 256, batch 128; ``--paper``: GRU 1024 (``ame-paper``'s size). No validation and no
tracked metrics (they are not training steps).

Rows: ``trainer`` vs ``bare_step`` (the trainer's overhead), ``trainer_vs_forward_backward`` (a whole
step over forward + backward alone), ``bare_step`` vs ``forward_backward``; on CUDA also in bf16 and
with ``torch.compile``. ``details.<variant>.objective_share_of_bare_step.align`` is the RCSLS objective's
share of a hand-written step.

usage: python benchmarks/bench_ame.py [--steps 8] [--repeats 3] [--paper] [--device cpu|cuda|both]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

import harness
import numpy as np
import torch
import training_throughput
from mmbench_plugins import ame

from mmbench.train import Objective, seed_everything
from mmbench.train.captions import CaptionVocabulary, PaddedCaptions

PIVOT, OTHER = "en", "de"
# multi30k-mini's shapes, for the synthetic stand-in when the data is absent (measured on the real data)
SYNTHETIC = {"captions": 7000, "images": 700, "feature_dim": 2048, "words": {"en": 1066, "de": 879},
             "lexicon": 707, "mean_length": 10.9}


@dataclass
class AMEData:
    config: ame.AMEConfig
    state: dict[str, Any]  # what build_net takes (vocabulary and shapes)
    collate: PaddedCaptions
    n_captions: int
    align_pairs: list[tuple]  # (src language, tgt language, src pool, tgt pool, src rows, tgt rows), as prepare
    source: str  # "multi30k-mini" or "synthetic"


def real_workload(config: ame.AMEConfig) -> AMEData | None:
    from mmbench.text import tokenize
    from mmbench.train.captions import caption_image_pairs, training_lexicon

    data = harness.data_dir()
    if data is None or not (data / "multi30k").is_dir():
        return None
    pairs = caption_image_pairs(config.train_data, "train", config.languages, data_dir=data, tokenize=tokenize)
    vocab = CaptionVocabulary.build(pairs.languages, pairs.tokens, min_count=config.min_count)
    lexicon = training_lexicon(data, PIVOT, OTHER, vocab, split=config.lexicon)[0]
    return _workload(config, vocab, pairs.languages, [vocab.rows(lang, t) for lang, t in zip(pairs.languages,
                     pairs.tokens)], pairs.image, pairs.features, lexicon, "multi30k-mini")


def synthetic_workload(config: ame.AMEConfig) -> AMEData:
    rng = np.random.default_rng(0)
    vocab = CaptionVocabulary({lang: [f"w{i}" for i in range(n)] for lang, n in SYNTHETIC["words"].items()})
    n, images = SYNTHETIC["captions"], SYNTHETIC["images"]
    languages = [PIVOT if i % 2 == 0 else OTHER for i in range(n)]
    lengths = np.clip(rng.poisson(SYNTHETIC["mean_length"], n), 1, 70)
    rows = [vocab.rows(lang, [f"w{int(r)}" for r in rng.zipf(1.3, size=k) % SYNTHETIC["words"][lang]])
            for lang, k in zip(languages, lengths)]
    lexicon = [(f"w{i}", f"w{i}") for i in rng.choice(min(SYNTHETIC["words"].values()), SYNTHETIC["lexicon"],
                                                       replace=False)]
    features = rng.standard_normal((images, SYNTHETIC["feature_dim"]), dtype=np.float32)
    return _workload(config, vocab, languages, rows, np.arange(n) % images, features, lexicon, "synthetic")


def _workload(config, vocab, languages, rows, image_of, features, lexicon, source) -> AMEData:
    """The state, collate and alignment pairs exactly as ``ame``'s ``prepare`` builds them."""
    position = {lang: i for i, lang in enumerate(vocab.languages)}
    state = {"dim": config.dim, "hidden": config.hidden, "image_encoder": "features",
             "feature_dim": int(features.shape[1]), "n_images": len(features), "vocabulary": vocab.to_json()}
    collate = PaddedCaptions(rows, [position[lang] for lang in languages], torch.tensor(features), image_of)
    src_at = {w: i for i, w in enumerate(vocab.words[PIVOT])}
    tgt_at = {w: i for i, w in enumerate(vocab.words[OTHER])}
    align = [(position[PIVOT], position[OTHER], torch.tensor(vocab.language_rows(PIVOT)),
              torch.tensor(vocab.language_rows(OTHER)), torch.tensor([src_at[s] for s, _ in lexicon]),
              torch.tensor([tgt_at[t] for _, t in lexicon]))]
    return AMEData(config, state, collate, len(rows), align, source)


def build(work: AMEData) -> torch.nn.Module:
    seed_everything(0)
    net = ame.build_net(work.state)
    with torch.no_grad():  # as ame's _initialise for init = "random" (the mappings stay the identity)
        torch.nn.init.normal_(net.text.words.weight, std=work.config.init_std)
        net.text.words.weight[0].zero_()
    return net


def objectives(work: AMEData, device: torch.device) -> list[Objective]:
    """The plugin's own ``training_objectives`` when it has one; until then the same declaration copied from
    ``AME.fit`` (the mappings move only by the alignment objective, the rest only by the ranking one)."""
    config = work.config
    pairs = [tuple(x.to(device) if isinstance(x, torch.Tensor) else x for x in p) for p in work.align_pairs]
    if hasattr(ame, "training_objectives"):
        return ame.training_objectives(config, pairs)
    return [Objective("ranking", lambda module, batch: ame.ranking_loss(module, batch, config),
                      params=lambda name: name != "text.mappings"),
            Objective("align", lambda module, batch: ame.alignment_loss(module, pairs, config.align_k),
                      params=lambda name: name == "text.mappings", every=config.align_every,
                      optimizer="sgd", lr=config.align_lr, momentum=0.0, weight_decay=0.0)]


def bench(hidden: int, steps: int, repeats: int, devices: tuple[str, ...]) -> dict:
    config = ame.AMEConfig(hidden=hidden, init="random")
    work = real_workload(config) or synthetic_workload(config)
    workload = training_throughput.Workload(
        build=lambda: build(work), objectives=lambda device: objectives(work, device),
        data=(torch.arange(work.n_captions),), collate=work.collate, train=config.train.replace(seed=0),
        unit="captions/s", what=f"GRU {hidden}, batch {config.train.batch_size}, {work.source}")
    result = training_throughput.measure(workload, steps, repeats, devices)
    result["details"].update(hidden=hidden, batch=config.train.batch_size, data=work.source,
                             captions=work.n_captions, lexicon_pairs=len(work.align_pairs[0][4]),
                             vocabulary_rows=len(CaptionVocabulary.from_json(work.state["vocabulary"])))
    return result


def run(quick: bool) -> dict:
    """GRU 256 on CPU (and the CUDA variants when a device is present); quick: fewer steps and repeats."""
    steps, repeats = (4, 2) if quick else (8, 3)
    return bench(256, steps, repeats, ("cpu", "cuda"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="timed steps per run")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs of each variant")
    parser.add_argument("--paper", action="store_true", help="the paper's GRU 1024 (ame-paper) instead of 256")
    parser.add_argument("--device", choices=["cpu", "cuda", "both"], default="both")
    args = parser.parse_args()
    devices = ("cpu", "cuda") if args.device == "both" else (args.device,)
    result = bench(1024 if args.paper else 256, args.steps, args.repeats, devices)
    print(json.dumps({"machine": harness.machine_facts(), **result}, indent=2))


if __name__ == "__main__":
    main()
