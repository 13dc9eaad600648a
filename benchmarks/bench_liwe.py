"""LIWE training throughput (captions/s) through the shared ``Trainer``, against the same network and
objective run by hand on the same batches, measured in the same run (``training_throughput.py``).

Workload: ``plugins/liwe.py`` as its ``prepare`` builds it, on the real multi30k-mini training data: the
plugin's own ``training_data`` (7,000 en + de captions of 700 photos with ResNet-50 features, and CLMR's
2,100 task-1 en-de/fr/cs translation pairs of the same photos), ``build_net`` for that state, the
``CaptionBatches`` collate and the one objective, ``LiweLoss`` (the weighted contrastive image-text loss
plus the CLMR term on a batch of parallel captions every step), with the plugin's optimizer (Adamax, not
fused) and clipping at 2. Two encoders, each a set of rows: ``liwe`` (the character-level LIWE word
embedding read by the bi-GRU) and ``liwe-wordtable`` (the control: a learnt word table under the same GRU
and loss). Default config: GRU 256, batch 128, CLMR batch 128; ``--quick``: GRU 128, batch 32, CLMR batch
32 (a step there is about a quarter of the default one). No validation (not a training step). Without
the multi30k data every row is skipped with the reason.

Rows, per encoder (``liwe/...``, ``liwe-wordtable/...``): ``trainer`` vs ``bare_step`` (the trainer's
overhead), ``trainer_vs_forward_backward``, ``bare_step`` vs ``forward_backward``, ``trainer_cpu_time``;
on CUDA also in bf16 and with ``torch.compile`` (skipped with the reason when there is no GPU).

usage: python benchmarks/bench_liwe.py [--steps 8] [--repeats 3] [--quick] [--device cpu|cuda|both]
"""

from __future__ import annotations

import argparse
import json

import harness
import torch
import training_throughput
from mmbench_plugins import liwe

from mmbench.models import RunContext
from mmbench.train import Objective, seed_everything

VARIANTS = {"liwe": "liwe", "liwe-wordtable": "wordtable"}  # row prefix -> text_encoder (as liwe.VARIANTS)


def config_for(encoder: str, quick: bool) -> liwe.LIWEConfig:
    if not quick:
        return liwe.LIWEConfig(text_encoder=encoder)
    default = liwe.LIWEConfig()
    return liwe.LIWEConfig(text_encoder=encoder, hidden=128, clmr_batch=32,
                           train=default.train.replace(batch_size=32))


def workload(config: liwe.LIWEConfig, data_dir) -> tuple[training_throughput.Workload, dict]:
    """The plugin's state, data, collate and objective, exactly as ``LIWE.prepare`` and ``LIWE.fit`` build them."""
    state, (pairs, parallel) = liwe.LIWE(config).training_data(RunContext(seed=0, data_dir=data_dir))
    inputs = liwe.TextInputs(state)
    collate = liwe.CaptionBatches(inputs, pairs.tokens, torch.tensor(pairs.features), pairs.image)

    def build() -> torch.nn.Module:
        seed_everything(0)
        return liwe.build_net(state)

    def objectives(device: torch.device) -> list[Objective]:  # as LIWE.fit declares it
        return [Objective("contrastive", liwe.LiweLoss(config, inputs, parallel, seed=0))]

    train = config.train
    work = training_throughput.Workload(
        build, objectives, data=(torch.arange(len(pairs)),), collate=collate, train=train.replace(seed=0),
        unit="captions/s", what=f"{config.text_encoder}, GRU {config.hidden}, batch {train.batch_size} + CLMR "
                                f"{config.clmr_batch}, multi30k-mini")
    facts = {"hidden": config.hidden, "batch": train.batch_size, "clmr_batch": config.clmr_batch,
             "captions": len(pairs), "parallel_pairs": len(parallel), "optimizer": train.optimizer,
             "parameters": sum(p.numel() for p in build().parameters())}
    return work, facts


def bench(quick: bool, steps: int, repeats: int, devices: tuple[str, ...]) -> dict:
    rows: list[dict] = []
    details: dict = {}
    data = harness.data_dir()
    for prefix, encoder in VARIANTS.items():
        if data is None or not (data / "multi30k").is_dir():
            rows.append(harness.skipped(f"{prefix}/cpu/trainer", "no multi30k data (MMBENCH_DATA or ../shared/data)"))
            continue
        work, facts = workload(config_for(encoder, quick), data)
        result = training_throughput.measure(work, steps, repeats, devices)
        rows += [{**r, "name": f"{prefix}/{r['name']}"} for r in result["rows"]]
        details[prefix] = {**result["details"], **facts}
    return {"rows": rows, "details": details}


def run(quick: bool) -> dict:
    """Both encoders on CPU (and the CUDA variants when a device is present); quick: a smaller network and
    batch, fewer steps and repeats."""
    steps, repeats = (3, 2) if quick else (8, 3)
    return bench(quick, steps, repeats, ("cpu", "cuda"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="timed steps per run")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs of each variant")
    parser.add_argument("--quick", action="store_true", help="GRU 128, batch 32, CLMR batch 32")
    parser.add_argument("--device", choices=["cpu", "cuda", "both"], default="both")
    args = parser.parse_args()
    devices = ("cpu", "cuda") if args.device == "both" else (args.device,)
    result = bench(args.quick, args.steps, args.repeats, devices)
    print(json.dumps({"machine": harness.machine_facts(), **result}, indent=2))


if __name__ == "__main__":
    main()
