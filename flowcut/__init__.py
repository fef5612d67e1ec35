"""flowcut: visual-token pruning (FlowCut and baselines) inside real transformers VLMs."""

from .errors import FlowcutError

__all__ = ["FlowcutError"]
