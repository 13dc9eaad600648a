"""IESG training throughput (pairs/s) through the shared ``Trainer``, against the same network and
objectives run by hand on the same batches, measured in the same run (``training_throughput.py``).

Workload: ``plugins/iesg.py`` as its ``prepare`` builds it: the plugin's own ``training_data`` (the
20,151-row en + de + fr table of the cached pre-trained aligned skip-gram vectors, 300-d; 3.56M
(central, context) pairs from the Multi30k task-1 train captions; the emoji train drawings' 1,280-d
features for the 3,195 words that have images), the network from ``IESG.build_net(state, training=True)``
(on the CPU: the sparse word table with its ``ReusedDenseGrad`` buffer; on CUDA: the plain table, as the
plugin builds it there), started from the pre-trained vectors and the centred features' mean as
``IESG.fit`` does, the ``IESGCollate`` batches (5 negatives and an image per central word drawn in the
collate) and the two objectives as ``IESG.fit`` declares them: ``word`` (the skip-gram hinge, momentum
SGD on the word table) then ``image`` (the hinge through ``W_p``, momentum SGD on ``W_p``), each step, in
that order; subnormals flushed as ``fit`` does. Batch 512 (the default config). When the data or the
cached pre-trained vectors are absent (building them is gensim training, minutes), a synthetic stand-in
of the same shapes (random unit vectors, Zipf word counts, random features), said in the notes.

Rows: ``trainer`` vs ``bare_step`` (the trainer's overhead), ``trainer_vs_forward_backward``,
``bare_step`` vs ``forward_backward`` (the two fused SGD steps over forward + backward),
``trainer_cpu_time``; on CUDA also in bf16 and with ``torch.compile`` (skipped with the reason when there
is no GPU). ``details.cpu.objective_share_of_bare_step`` splits a hand-written step between ``word`` and
``image``.

usage: python benchmarks/bench_iesg.py [--steps 16] [--repeats 3] [--device cpu|cuda|both]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

import harness
import numpy as np
import torch
import training_throughput
from mmbench_plugins import iesg

from mmbench.errors import MMBenchError
from mmbench.models import RunContext
from mmbench.train import Objective, seed_everything
from mmbench.train.iesg import IESGCollate, image_loss, word_loss

# The real workload's shapes (measured on it), for the synthetic stand-in
SYNTHETIC = {"words": {"en": 5879, "de": 7856, "fr": 6416}, "dim": 300, "pairs": 3_558_427, "images": 3079,
             "feature_dim": 1280, "image_words": {"en": 1111, "de": 976, "fr": 1108}, "images_per_word": 7}


@dataclass
class IESGData:
    state: dict
    data: iesg.TrainingData
    source: str  # "multi30k + emoji" or "synthetic"


def real_workload(config: iesg.IESGConfig) -> IESGData | None:
    from mmbench.train.skipgram import aligned_skipgram_vectors

    data = harness.data_dir()
    if data is None or not (data / "multi30k").is_dir():
        return None
    try:  # only when cached: training them is gensim on three languages, minutes
        aligned_skipgram_vectors(config.skipgram, data, seed=0, train=False)
    except MMBenchError:
        return None
    state, training = iesg.IESG(config).training_data(RunContext(seed=0, data_dir=data))
    return IESGData(state, training, "multi30k + emoji")


def synthetic_workload(config: iesg.IESGConfig) -> IESGData:
    rng = np.random.default_rng(0)
    languages = list(SYNTHETIC["words"])
    sizes = [SYNTHETIC["words"][lang] for lang in languages]
    starts = np.cumsum([0, *sizes])[:-1]
    counts = np.concatenate([np.maximum(1, (1e5 / np.arange(1, n + 1)).astype(np.int64)) for n in sizes])
    weights = counts / counts.sum()
    center = rng.choice(len(counts), SYNTHETIC["pairs"], p=weights)
    context = rng.choice(len(counts), SYNTHETIC["pairs"], p=weights)
    images_of: list[list[int]] = [[] for _ in counts]
    for lang, start, n in zip(languages, starts, sizes):
        block = counts[start:start + n] / counts[start:start + n].sum()
        for row in start + rng.choice(n, SYNTHETIC["image_words"][lang], replace=False, p=block):
            images_of[row] = sorted(rng.choice(SYNTHETIC["images"], SYNTHETIC["images_per_word"], replace=False))
    features = rng.standard_normal((SYNTHETIC["images"], SYNTHETIC["feature_dim"]), dtype=np.float32)
    init = rng.standard_normal((len(counts), SYNTHETIC["dim"]), dtype=np.float32)
    init /= np.linalg.norm(init, axis=1, keepdims=True)
    collate = IESGCollate(counts, list(starts), images_of, torch.from_numpy(features), config.negatives)
    state = {"loss": config.loss, "languages": languages, "dim": SYNTHETIC["dim"],
             "words": {lang: [f"w{i}" for i in range(n)] for lang, n in zip(languages, sizes)},
             "feature_dim": SYNTHETIC["feature_dim"], "normalize_features": config.normalize_features,
             "center_features": config.center_features}
    mean = np.zeros(SYNTHETIC["feature_dim"], dtype=np.float32)
    return IESGData(state, iesg.TrainingData(torch.from_numpy(center), torch.from_numpy(context), collate, init, mean),
                    "synthetic")


def build(config: iesg.IESGConfig, work: IESGData, device: str) -> torch.nn.Module:
    """``IESG.build_net(state, training=True)`` for ``device``, started as ``IESG.fit`` starts it."""
    model = iesg.IESG(config)
    model.device = torch.device(device)
    seed_everything(0)
    net = model.build_net(work.state, training=True)
    with torch.no_grad():
        net.words.weight.copy_(torch.from_numpy(work.data.init))
        net.image.mean.copy_(torch.from_numpy(work.data.feature_mean))
    return net


def objectives(config: iesg.IESGConfig) -> list[Objective]:
    """The objectives exactly as ``IESG.fit`` declares them for ``loss = "iesg"`` (copied: the plugin has no
    function that returns them)."""
    hinge = {"margin": config.margin, "lam": config.lam}
    image_params = (lambda name: True) if config.image_updates == "all" else (lambda name: name.startswith("image."))
    update_words = config.image_updates == "all"
    return [Objective("word", lambda m, b: word_loss(m, b, **hinge), params=lambda name: name.startswith("words.")),
            Objective("image", lambda m, b: image_loss(m, b, update_words=update_words, **hinge),
                      params=image_params, lr=config.image_lr)]


def bench(steps: int, repeats: int, devices: tuple[str, ...]) -> dict:
    config = iesg.IESGConfig()
    work = real_workload(config) or synthetic_workload(config)
    train = config.train.replace(seed=0)
    rows: list[dict] = []
    details: dict = {"steps": steps, "repeats": repeats, "threads": torch.get_num_threads()}
    flushed = torch.set_flush_denormal(True)  # as IESG.fit
    try:
        for device in devices:  # the CPU net carries a CPU gradient buffer: one workload per device
            workload = training_throughput.Workload(
                build=lambda device=device: build(config, work, device), objectives=lambda _: objectives(config),
                data=(work.data.center, work.data.context), collate=work.data.collate, train=train,
                unit="pairs/s", what=f"batch {train.batch_size}, word + image objectives, {work.source}")
            result = training_throughput.measure(workload, steps, repeats, (device,))
            rows += result["rows"]
            details.update(result["details"])
    finally:
        if flushed:
            torch.set_flush_denormal(False)
    with_images = float((work.data.collate.n_images[work.data.center] > 0).float().mean())
    details.update(data=work.source, batch=train.batch_size, table_rows=int(work.data.init.shape[0]),
                   dim=int(work.data.init.shape[1]), pairs=len(work.data.center),
                   pairs_with_images=round(with_images, 3))
    return {"rows": rows, "details": details}


def run(quick: bool) -> dict:
    """Batch 512 on CPU (and the CUDA variants when a device is present); quick: fewer steps and repeats
    (a step is short next to loading the data)."""
    steps, repeats = (8, 2) if quick else (16, 3)
    return bench(steps, repeats, ("cpu", "cuda"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=16, help="timed steps per run")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs of each variant")
    parser.add_argument("--device", choices=["cpu", "cuda", "both"], default="both")
    args = parser.parse_args()
    devices = ("cpu", "cuda") if args.device == "both" else (args.device,)
    result = bench(args.steps, args.repeats, devices)
    print(json.dumps({"machine": harness.machine_facts(), **result}, indent=2))


if __name__ == "__main__":
    main()
