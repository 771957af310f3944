"""The hot loop, from camera queues to published results."""

from edgevision.pipeline.pipeline import Pipeline, choose_layout
from edgevision.pipeline.stages import Layout

__all__ = ["Layout", "Pipeline", "choose_layout"]
