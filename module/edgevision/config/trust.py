"""The `remote` section: what the module twin and direct methods may point cameras at. Set only by
the local configuration (file, environment, flags, a mounted file): a remote document that sets
it is refused (config/remote.py), so a twin writer cannot widen its own reach."""

from __future__ import annotations

from pydantic import Field

from edgevision.config.section import Section


class RemoteConfig(Section):
    local_sources: tuple[str, ...] = Field(
        default=(),
        max_length=64,
        description="Local sources a twin or method may name for a camera: folders (any file or folder inside, e.g. /media/clips), device paths (/dev/video0), or `synthetic:`. Empty: none; a remote camera may still repeat a URI the local configuration names itself.",
    )
    credential_hosts: tuple[str, ...] | None = Field(
        default=None,
        max_length=256,
        description="Camera hosts a remote camera may send a credentials reference (env:/file:) to, by host name or address (any port). None: the hosts of the local configuration's own stream cameras; empty: none at all.",
    )
