"""Find the GPU that EFLOW passed through: DDA, GPU-PV, or none, and say why."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from edgevision.accel.compat import cuda_problems

log = logging.getLogger(__name__)

Mode = Literal["dda", "gpu-pv", "none"]

WSL_LIB_DIR = Path("/usr/lib/wsl/lib")
CUDA_LIBRARY = "libcuda.so.1"


@dataclass(frozen=True)
class ProbeTargets:
    """Where the probes look; tests point these at fake roots and libraries."""

    dev_root: Path = Path("/dev")
    wsl_lib_dirs: tuple[Path, ...] = (WSL_LIB_DIR,)
    # None: the loader's own path (LD_LIBRARY_PATH, then the ldconfig cache).
    library_dirs: tuple[Path, ...] | None = None
    python: str = sys.executable
    timeout_s: float = 10.0


@dataclass
class Probe:
    name: str
    ok: bool
    detail: str


@dataclass
class GpuInfo:
    index: int
    name: str | None = None
    uuid: str | None = None
    memory_total_mib: int | None = None
    memory_free_mib: int | None = None
    compute_capability: str | None = None
    # Which API answered: NVML under DDA; under GPU-PV often the CUDA driver for memory.
    source: str = "nvml"


@dataclass
class AcceleratorInfo:
    mode: Mode
    gpus: list[GpuInfo] = field(default_factory=list)
    driver_version: str | None = None
    cuda_driver_version: str | None = None
    cuda_library: str | None = None
    device_nodes: list[str] = field(default_factory=list)
    # NVML fields that failed (GPU-PV answers only partly), as "field: error".
    nvml_unsupported: list[str] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    # Whether this GPU and driver can run the module's CUDA (None: no GPU, or not known) and why not.
    cuda_compatible: bool | None = None
    cuda_problems: list[str] = field(default_factory=list)

    @property
    def has_gpu(self) -> bool:
        return self.mode != "none"

    def summary(self) -> str:
        if self.mode == "none":
            return "no GPU: " + "; ".join(self.reasons)
        gpu = self.gpus[0] if self.gpus else None
        name = gpu.name if gpu and gpu.name else "unknown GPU"
        memory = f", {gpu.memory_total_mib} MiB" if gpu and gpu.memory_total_mib else ""
        driver = f", driver {self.driver_version}" if self.driver_version else ""
        return f"{self.mode}: {name}{memory}{driver}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def paravirtualized(dev_root: Path = Path("/dev")) -> bool:
    """Whether the GPU is shared with the Windows host (GPU-PV: /dev/dxg), where its memory is
    short and shared: the first thing discovery checks, cheap enough for every engine."""
    return (dev_root / "dxg").exists()


def discover(targets: ProbeTargets | None = None) -> AcceleratorInfo:
    """Classify by device nodes first, then ask NVML and the CUDA driver in a child process."""
    targets = targets or ProbeTargets()
    probes: list[Probe] = []

    dxg = targets.dev_root / "dxg"
    has_dxg = paravirtualized(targets.dev_root)
    probes.append(Probe("dev-dxg", has_dxg, f"{dxg} {'present' if has_dxg else 'not found'}"))

    nvidia_nodes = sorted(str(p) for p in targets.dev_root.glob("nvidia[0-9]*"))
    probes.append(
        Probe(
            "dev-nvidia",
            bool(nvidia_nodes),
            ", ".join(nvidia_nodes) if nvidia_nodes else f"no {targets.dev_root}/nvidia[0-9]* device nodes",
        )
    )

    search_dirs = _library_search_dirs(targets)
    cuda_library = _find_library(CUDA_LIBRARY, search_dirs, use_ldconfig=targets.library_dirs is None)
    probes.append(
        Probe(
            "libcuda",
            cuda_library is not None,
            cuda_library or f"{CUDA_LIBRARY} not found in {', '.join(map(str, search_dirs))} or the loader's cache",
        )
    )

    # NVML answers partly under GPU-PV, so it is asked in both modes; the CUDA driver is
    # asked for memory only when NVML could not give it.
    native = _run_native(targets, search_dirs, want_cuda=cuda_library is not None)
    nvml = native.get("nvml") or {"ok": False, "error": native.get("error", "probe did not run")}
    probes.append(Probe("nvml", bool(nvml.get("ok")), _nvml_detail(nvml)))
    cuda = native.get("cuda")
    if cuda is not None:
        probes.append(Probe("cuda-driver", bool(cuda.get("ok")), _cuda_detail(cuda)))

    info = AcceleratorInfo(
        mode="none",
        cuda_library=cuda_library,
        device_nodes=([str(dxg)] if has_dxg else []) + nvidia_nodes,
        probes=probes,
    )
    if nvml.get("ok"):
        info.driver_version = nvml.get("driver_version")
        info.cuda_driver_version = _cuda_version_text(nvml.get("cuda_driver_version"))
        info.nvml_unsupported = list(nvml.get("unsupported", []))
        info.gpus = [_gpu_from_nvml(g) for g in nvml.get("gpus", [])]
    if cuda and cuda.get("ok"):
        info.cuda_driver_version = info.cuda_driver_version or _cuda_version_text(cuda.get("cuda_driver_version"))
        _fill_from_cuda(info, cuda.get("gpus", []))

    if has_dxg and cuda_library:
        info.mode = "gpu-pv"
        if not info.gpus:
            info.reasons.append("GPU-PV device and CUDA library present, but neither NVML nor CUDA listed a GPU")
    elif has_dxg:
        info.reasons.append(
            f"{dxg} present but {CUDA_LIBRARY} not found: mount /usr/lib/wsl read-only into the container "
            "and put /usr/lib/wsl/lib on LD_LIBRARY_PATH"
        )
    elif nvidia_nodes and nvml.get("ok") and info.gpus:
        info.mode = "dda"
    elif nvidia_nodes:
        info.reasons.append(f"NVIDIA device nodes present but NVML failed: {_nvml_detail(nvml)}")
    else:
        info.reasons.append("no GPU device nodes (/dev/dxg for GPU-PV, /dev/nvidia* for DDA)")
        if not nvml.get("ok"):
            info.reasons.append(_nvml_detail(nvml))
    if info.mode == "none":
        info.gpus = []
    else:
        info.cuda_compatible, info.cuda_problems = cuda_problems(
            info.cuda_driver_version, [(g.name, g.compute_capability) for g in info.gpus]
        )
        if info.cuda_compatible is False:
            log.error("this GPU or driver cannot run the module's CUDA: %s", "; ".join(info.cuda_problems))
    log.info("accelerator: %s", info.summary())
    return info


def _library_search_dirs(targets: ProbeTargets) -> list[Path]:
    dirs = list(targets.wsl_lib_dirs)
    if targets.library_dirs is not None:
        dirs.extend(targets.library_dirs)
    else:
        dirs.extend(Path(p) for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p)
    return list(dict.fromkeys(dirs))


def _find_library(name: str, dirs: list[Path], use_ldconfig: bool) -> str | None:
    for directory in dirs:
        candidate = directory / name
        if candidate.exists():
            return str(candidate)
    if use_ldconfig:
        return _ldconfig_lookup(name)
    return None


def _ldconfig_lookup(name: str) -> str | None:
    for ldconfig in ("/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig"):
        try:
            out = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, timeout=5, check=False).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        for line in out.splitlines():
            parts = line.strip().split(" => ")
            if len(parts) == 2 and parts[0].split(" ")[0] == name:
                return parts[1]
        return None
    return None


def _run_native(targets: ProbeTargets, search_dirs: list[Path], want_cuda: bool) -> dict[str, Any]:
    """Run edgevision.accel.native in a child with the probe's library path and a timeout."""
    env = dict(os.environ)
    lib_path = [str(d) for d in search_dirs]
    if targets.library_dirs is None and env.get("LD_LIBRARY_PATH"):
        lib_path.append(env["LD_LIBRARY_PATH"])
    env["LD_LIBRARY_PATH"] = ":".join(lib_path)
    args = [targets.python, "-m", "edgevision.accel.native", "nvml"]
    if want_cuda:
        args += ["cuda", "cuda-free"]
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=targets.timeout_s, env=env, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"driver probe timed out after {targets.timeout_s:g} s (NVML or the CUDA driver hung)"}
    except OSError as exc:
        return {"error": f"driver probe could not start: {exc}"}
    if proc.returncode < 0:
        return {"error": f"driver probe crashed with {signal.Signals(-proc.returncode).name} (broken driver library)"}
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": f"driver probe failed (exit {proc.returncode}): {tail[0]}"}


def _nvml_detail(nvml: dict[str, Any]) -> str:
    if not nvml.get("ok"):
        return f"NVML unavailable: {nvml.get('error')}"
    detail = f"NVML driver {nvml.get('driver_version', '?')}, {len(nvml.get('gpus', []))} GPU(s)"
    if nvml.get("unsupported"):
        detail += f", {len(nvml['unsupported'])} field(s) not supported"
    return detail


def _cuda_detail(cuda: dict[str, Any]) -> str:
    if not cuda.get("ok"):
        return f"CUDA driver unusable: {cuda.get('error')}"
    return f"CUDA driver {_cuda_version_text(cuda.get('cuda_driver_version'))}, {len(cuda.get('gpus', []))} device(s)"


def _cuda_version_text(value: Any) -> str | None:
    """NVML and cuDriverGetVersion both give 1000*major + 10*minor."""
    if not isinstance(value, int) or value <= 0:
        return None
    return f"{value // 1000}.{(value % 1000) // 10}"


def _mib(value: Any) -> int | None:
    return int(value) // (1024 * 1024) if isinstance(value, int) else None


def _gpu_from_nvml(raw: dict[str, Any]) -> GpuInfo:
    memory = raw.get("memory") or {}
    return GpuInfo(
        index=int(raw.get("index", 0)),
        name=raw.get("name"),
        uuid=raw.get("uuid"),
        memory_total_mib=_mib(memory.get("total_bytes")),
        memory_free_mib=_mib(memory.get("free_bytes")),
        compute_capability=raw.get("compute_capability"),
    )


def _fill_from_cuda(info: AcceleratorInfo, cuda_gpus: list[dict[str, Any]]) -> None:
    """Fill what NVML could not give from the CUDA driver (GPU-PV memory figures, mostly)."""
    by_index = {g.index: g for g in info.gpus}
    for raw in cuda_gpus:
        memory = raw.get("memory") or {}
        gpu = by_index.get(int(raw["index"]))
        if gpu is None:
            gpu = GpuInfo(index=int(raw["index"]), source="cuda")
            info.gpus.append(gpu)
        filled = False
        for attr, value in (
            ("name", raw.get("name")),
            ("memory_total_mib", _mib(memory.get("total_bytes"))),
            ("memory_free_mib", _mib(memory.get("free_bytes"))),
            ("compute_capability", raw.get("compute_capability")),
        ):
            if getattr(gpu, attr) is None and value is not None:
                setattr(gpu, attr, value)
                filled = True
        if filled and gpu.source == "nvml":
            gpu.source = "nvml+cuda"
