"""The module's image under a real container engine (podman): containers started, signalled,
health-checked and removed by the container tests."""

from __future__ import annotations

import json
import shlex
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# A name each test's containers and volumes carry, so that what a failed run left behind is found.
LABEL = "edgevision-test=1"


class EngineError(AssertionError):
    pass


@dataclass
class Engine:
    """`flags` are what this host needs on every `run` (runtime, limits), never module settings."""

    binary: str
    image: str
    flags: list[str] = field(default_factory=list)

    def __call__(self, *args: str, timeout: float = 120.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [self.binary, *args]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise EngineError(f"{shlex.join(command)}: no answer in {timeout} s") from exc
        if check and done.returncode != 0:
            raise EngineError(f"{shlex.join(command)} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
        return done

    def start(self, *run_args: str, command: tuple[str, ...] = (), image: str | None = None) -> Container:
        """A detached container: `run_args` go before the image, `command` after it."""
        name = f"edgevision-test-{uuid.uuid4().hex[:10]}"
        self("run", "--detach", "--name", name, "--label", LABEL, *self.flags, *run_args, image or self.image, *command)
        return Container(self, name)

    def run(
        self, *run_args: str, command: tuple[str, ...] = (), timeout: float = 300.0
    ) -> subprocess.CompletedProcess[str]:
        """A container run to its end and removed; its exit status and output."""
        name = f"edgevision-test-{uuid.uuid4().hex[:10]}"
        args = ("run", "--rm", "--name", name, "--label", LABEL, *self.flags, *run_args, self.image, *command)
        try:
            return self(*args, timeout=timeout, check=False)
        finally:
            self("rm", "--force", "--ignore", name, check=False)

    def volume(self, name: str) -> Path:
        """A new named volume; refuses to touch one that these tests did not make."""
        existing = self("volume", "inspect", name, check=False)
        if existing.returncode == 0:
            labels = json.loads(existing.stdout)[0].get("Labels") or {}
            if labels.get("edgevision-test") != "1":
                raise EngineError(f"volume {name} exists and was not made by these tests: remove it first")
            self("volume", "rm", "--force", name)
        self("volume", "create", "--label", LABEL, name)
        return self.volume_path(name)

    def volume_path(self, name: str) -> Path:
        return Path(self("volume", "inspect", name, "--format", "{{.Mountpoint}}").stdout.strip())

    def remove_volume(self, name: str) -> None:
        self("volume", "rm", "--force", name, check=False)

    def image_config(self) -> dict[str, Any]:
        return json.loads(self("image", "inspect", self.image).stdout)[0]


@dataclass
class Container:
    engine: Engine
    name: str

    def inspect(self) -> dict[str, Any]:
        return json.loads(self.engine("container", "inspect", self.name).stdout)[0]

    @property
    def running(self) -> bool:
        done = self.engine("container", "inspect", self.name, "--format", "{{.State.Running}}", check=False)
        return done.stdout.strip() == "true"

    def logs(self) -> str:
        done = self.engine("logs", self.name, check=False)
        return done.stdout + done.stderr

    def exec(self, *command: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return self.engine("exec", self.name, *command, timeout=timeout, check=False)

    def healthcheck(self) -> tuple[int, str]:
        """`podman healthcheck run`: 0 when the image's HEALTHCHECK passes."""
        done = self.engine("healthcheck", "run", self.name, timeout=60, check=False)
        return done.returncode, (done.stdout + done.stderr).strip()

    def signal(self, name: str) -> None:
        self.engine("kill", "--signal", name, self.name)

    def wait(self, timeout: float) -> int:
        """The container's exit status, once it has stopped."""
        deadline = time.monotonic() + timeout
        while self.running:
            if time.monotonic() > deadline:
                raise EngineError(f"{self.name} still running after {timeout} s:\n{self.logs()[-3000:]}")
            time.sleep(0.2)
        return int(self.inspect()["State"]["ExitCode"])

    def stop(self) -> tuple[float, int]:
        """`stop` with the engine's default grace (10 s, then SIGKILL): seconds taken, exit status."""
        started = time.monotonic()
        self.engine("stop", self.name, timeout=60)
        return time.monotonic() - started, self.wait(10)

    def remove(self) -> None:
        self.engine("rm", "--force", "--ignore", self.name, check=False)


def deployment_flags(module: dict[str, Any]) -> list[str]:
    """A deployment manifest's module entry (its `settings.createOptions`, split or not, and its
    `env`) as `podman run` flags, the way edgeAgent turns them into a Docker create call. A key
    this does not know fails the test rather than being left out: what users push is what runs."""
    settings = module["settings"]
    chunks = [settings.get("createOptions", "")] + [
        settings[f"createOptions{i:02d}"] for i in range(1, 8) if f"createOptions{i:02d}" in settings
    ]
    options = json.loads("".join(chunks) or "{}")
    flags: list[str] = []
    unknown: list[str] = []
    for key, value in options.items():
        if key == "ExposedPorts":
            flags += [f"--expose={port}" for port in value]
        elif key == "Env":
            flags += [f"--env={item}" for item in value]
        elif key == "StopTimeout":
            flags.append(f"--stop-timeout={int(value)}")
        elif key == "HostConfig":
            for host_key, host_value in value.items():
                translated = _host_config(host_key, host_value)
                if translated is None:
                    unknown.append(f"HostConfig.{host_key}")
                else:
                    flags += translated
        else:
            unknown.append(key)
    if unknown:
        raise EngineError(f"createOptions keys this test cannot translate yet: {', '.join(unknown)}")
    flags += [f"--env={name}={entry['value']}" for name, entry in module.get("env", {}).items()]
    return flags


def _host_config(key: str, value: Any) -> list[str] | None:
    if key == "Binds":
        return [f"--volume={bind}" for bind in value]
    if key == "ShmSize":
        return [f"--shm-size={int(value)}b"]
    if key == "LogConfig":
        return [f"--log-driver={value['Type']}"] + [f"--log-opt={k}={v}" for k, v in value.get("Config", {}).items()]
    if key == "Devices":
        return [f"--device={d['PathOnHost']}:{d['PathInContainer']}:{d.get('CgroupPermissions', 'rwm')}" for d in value]
    if key == "PortBindings":
        return [
            f"--publish={binding.get('HostIp', '') + ':' if binding.get('HostIp') else ''}{binding['HostPort']}:{port}"
            for port, bindings in value.items()
            for binding in bindings
        ]
    return None
