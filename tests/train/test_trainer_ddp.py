"""Two gloo processes train exactly like one process with the same global batch."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file
from trainer_toy import ddp_trainer, make_pairs

from mmbench.train import encode, read_metrics

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_two_ranks(out: Path) -> None:
    base = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(_free_port()), "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    processes = [subprocess.Popen([sys.executable, str(HERE / "ddp_worker.py"), str(out)], cwd=REPO,
                                  env={**base, "RANK": str(r), "LOCAL_RANK": str(r)},
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for r in range(2)]
    logs = [p.communicate(timeout=300)[0] for p in processes]
    for r, (process, log) in enumerate(zip(processes, logs)):
        assert process.returncode == 0, f"rank {r} failed:\n{log}"


def test_trainer_ddp_two_ranks_match_one_process(tmp_path):
    _run_two_ranks(tmp_path)
    single = ddp_trainer(tmp_path / "single")
    single.fit()

    # Same loss curve (both objectives; the nce loss gathers in-batch negatives across ranks).
    two = read_metrics(tmp_path / "run" / "metrics.jsonl")
    one = read_metrics(tmp_path / "single" / "metrics.jsonl")
    assert [r["step"] for r in two] == [r["step"] for r in one] == list(range(1, 9))
    for key in ("loss/nce", "loss/align", "lr/align"):
        left = [r.get(key) for r in two]
        right = [r.get(key) for r in one]
        assert [v is None for v in left] == [v is None for v in right]
        assert torch.allclose(torch.tensor([v for v in left if v is not None]),
                              torch.tensor([v for v in right if v is not None]), rtol=1e-5, atol=1e-6), key
    assert one[-1]["loss/nce"] < one[0]["loss/nce"]

    ranks = [load_file(str(tmp_path / f"rank{r}.safetensors")) for r in range(2)]
    reference = single.model.state_dict()
    for name, value in reference.items():
        assert torch.equal(ranks[0][f"weight/{name}"], ranks[1][f"weight/{name}"]), name
        assert torch.allclose(ranks[0][f"weight/{name}"], value, atol=1e-5), name

    # Only rank 0 wrote: one log, one checkpoint series (steps 4 and 8), each with both ranks' RNG.
    checkpoints = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir() if p.is_dir())
    assert checkpoints == ["step-00000004", "step-00000008"]
    state = (tmp_path / "run" / "checkpoints" / "step-00000008" / "state.json").read_text()
    assert '"world_size": 2' in state

    # Data-parallel encode returns every row, in single-process order, on both ranks.
    expected = encode(single.model.encode_a, make_pairs(n=245)[0], batch_size=10)
    for outputs in ranks:
        assert torch.allclose(outputs["encoded"], expected, atol=1e-6)

    # all_gather_with_grad: rows in rank order; each row's gradient sums both ranks' weights (1x + 2x).
    for r, outputs in enumerate(ranks):
        assert torch.equal(outputs["gathered"], torch.ones(5, 4))
        rows = range(3) if r == 0 else range(3, 5)
        expected_grad = torch.tensor([[3.0 * i] * 4 for i in rows])
        assert torch.equal(outputs["gather_grad"], expected_grad)
