"""What /status says of the inference stages."""

from __future__ import annotations

from typing import Any

from edgevision.pipeline.stages import InferenceStages


def stage_status(stages: InferenceStages | None) -> dict[str, Any]:
    """What /status says of the stages: model (and whether its file is the manifest's), provider, layout."""
    if stages is None:
        return dict.fromkeys(("model", "model_verified", "model_verification", "provider", "layout"))
    return {
        "model": stages.model.name,
        "model_verified": stages.model.verified,
        "model_verification": stages.model.verification,
        "provider": stages.engine.status.to_dict(),
        "layout": vars(stages.layout),
    }
