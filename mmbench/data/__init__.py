"""Loaders for benchmark data (one module per dataset) and the embedded ``emoji`` dataset.

Constants needed without loading anything live here, so task kinds can validate cards cheaply.
"""

EMOJI_SPLITS = ("train", "val", "test")  # concept-level splits of the embedded emoji data (gender variants together)
# Feature spaces of the shipped and user-provided image features (a model trained on one embeds only it).
EMOJI_FEATURE_SOURCE = "emoji/efficientnet-lite0"
MULTI30K_FEATURE_SOURCE = "multi30k/resnet50-avgpool"
