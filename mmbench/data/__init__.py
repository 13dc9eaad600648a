"""Loaders for benchmark data (one module per dataset) and the embedded ``emoji`` dataset.

Constants needed without loading anything live here, so task kinds can validate cards cheaply.
"""

EMOJI_SPLITS = ("train", "val", "test")  # concept-level splits of the embedded emoji data (gender variants together)
