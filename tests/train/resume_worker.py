"""Subprocess for test_trainer_resume: runs the toy training and dies by SIGKILL inside step STEP's loss.

usage: resume_worker.py RUN_DIR STEP
"""

import sys

import torch
from trainer_toy import resume_trainer

torch.set_num_threads(1)  # as the tests' conftest
resume_trainer(sys.argv[1], kill_at_step=int(sys.argv[2])).fit()
sys.exit(3)  # not killed: the test must notice
