"""One rank of test_trainer_ddp (launched with torchrun's environment variables set by the test).

usage: ddp_worker.py OUT_DIR   -> OUT_DIR/run (rank 0's checkpoints and log), OUT_DIR/rank{r}.safetensors
"""

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from trainer_toy import ddp_trainer, make_pairs

from mmbench.train import encode
from mmbench.train.distributed import all_gather_with_grad, rank, shutdown, world_size

torch.set_num_threads(1)  # as the tests' conftest
out = Path(sys.argv[1])
trainer = ddp_trainer(out / "run")
assert world_size() == 2, "expected to run under a 2-process group"
trainer.fit()
outputs = {f"weight/{k}": v.detach().clone() for k, v in trainer.model.state_dict().items()}

# Ordered, data-parallel encode: 245 rows split 123/122, in batches of 10.
outputs["encoded"] = encode(trainer.model.encode_a, make_pairs(n=245)[0], batch_size=10, distributed=True)

# Gradients through an uneven gather: rank 0 holds 3 rows, rank 1 holds 2; every rank's loss weights
# the global rows by (rank + 1) * row index, so each local row's gradient is the sum over both ranks.
rows = 3 if rank() == 0 else 2
local = torch.ones(rows, 4, requires_grad=True)
gathered = all_gather_with_grad(local)
weights = (rank() + 1) * torch.arange(5, dtype=torch.float32)[:, None].expand(5, 4)
(gathered * weights).sum().backward()
outputs["gathered"] = gathered.detach()
outputs["gather_grad"] = local.grad
save_file(outputs, str(out / f"rank{rank()}.safetensors"))
shutdown()
