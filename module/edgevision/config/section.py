"""What every configuration section shares: frozen, unknown keys refused; comma-separated lists."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    # Frozen: a section is compared whole to tell what a reconfiguration changed.
    model_config = ConfigDict(extra="forbid", frozen=True)


def comma_list(value: str | None) -> tuple[str, ...]:
    """ "a, b,,c" -> ("a", "b", "c"); None or blanks -> ()."""
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())
