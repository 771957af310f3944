"""Session and provider options: TensorRT profiles, caches, GPU-PV-friendly CUDA settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgevision.detector.load import batch_sizes, tensorrt_inputs
from edgevision.inference.options import (
    EngineConfig,
    memory_share,
    padded_batch_sizes,
    provider_options,
    tensorrt_profile,
)
from edgevision.inference.providers import CUDA, TENSORRT, plan_providers
from edgevision.models.manifest import InputSpec
from edgevision.models.onnx_facts import read_facts


def test_padded_batch_sizes() -> None:
    assert padded_batch_sizes(1) == [1]
    assert padded_batch_sizes(8) == [1, 2, 4, 8]
    assert padded_batch_sizes(6) == [1, 2, 4, 6]


def test_each_tensorrt_session_gets_a_profile_pinned_to_its_batch_and_a_cache(tmp_path: Path) -> None:
    assert tensorrt_profile([("images", [3, 416, 416])], padded_batch_sizes(8)) == (
        "images:1x3x416x416",
        "images:8x3x416x416",
        "images:8x3x416x416",
    )
    config = EngineConfig(tensorrt_inputs=(("images", (3, 416, 416)),), tensorrt_cache_dir=tmp_path)
    for batch in (1, 4):
        options = provider_options(config, TENSORRT, batch=batch)
        shape = f"images:{batch}x3x416x416"
        assert options["trt_profile_min_shapes"] == options["trt_profile_opt_shapes"] == shape
        assert options["trt_profile_max_shapes"] == shape
    assert options["trt_engine_cache_path"] == options["trt_timing_cache_path"] == str(tmp_path)
    assert options["trt_engine_cache_enable"] and options["trt_timing_cache_enable"]


def _model(path: Path, batch: str | int) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["images"], ["out"])],
        "m",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, 32, 48])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [batch, 3, 32, 48])],
        [numpy_helper.from_array(np.zeros(1, np.float32), "unused")],
    )
    onnx.save(helper.make_model(graph), str(path))
    return path


def test_the_inputs_and_batch_sizes_are_read_from_the_model_file(tmp_path: Path) -> None:
    dynamic = read_facts(_model(tmp_path / "n.onnx", "N"))
    assert tensorrt_inputs(dynamic) == (("images", (3, 32, 48)),)
    assert batch_sizes(dynamic, 8) == [1, 2, 4, 8]
    # A fixed batch is the only shape there is.
    assert batch_sizes(read_facts(_model(tmp_path / "one.onnx", 1)), 8) == [1]


def test_every_input_is_profiled_with_sizes_the_export_left_open_taken_from_the_manifest(tmp_path: Path) -> None:
    """A DETR deployment export's sizes input shares the batch; a dynamic Ultralytics export leaves
    height and width open, and TensorRT is given the model's own size for them."""
    graph = helper.make_graph(
        [helper.make_node("Relu", ["images"], ["out"])],
        "m",
        [
            helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, "height", "width"]),
            helper.make_tensor_value_info("orig_target_sizes", TensorProto.INT64, ["N", 2]),
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 3, "height", "width"])],
    )
    path = tmp_path / "detr.onnx"
    onnx.save(helper.make_model(graph), str(path))
    inputs = tensorrt_inputs(read_facts(path), InputSpec(width=640, height=480))
    assert inputs == (("images", (3, 480, 640)), ("orig_target_sizes", (2,)))
    options = provider_options(EngineConfig(tensorrt_inputs=inputs), TENSORRT, batch=4)
    assert options["trt_profile_opt_shapes"] == "images:4x3x480x640,orig_target_sizes:4x2"


def test_cuda_options_are_onnx_runtimes_fastest_where_memory_allows() -> None:
    """Measured on an H200 with one input shape per session: ORT's default arena 1,555 fps against
    1,017 with kSameAsRequested; EXHAUSTIVE search 1,639 against 1,555 with HEURISTIC."""
    options = provider_options(EngineConfig(shared_gpu=False), CUDA)
    assert options["cudnn_conv_algo_search"] == "EXHAUSTIVE"
    assert "arena_extend_strategy" not in options and "cudnn_conv_use_max_workspace" not in options
    assert "gpu_mem_limit" not in options and "enable_cuda_graph" not in options


def test_cuda_options_avoid_what_fails_where_memory_is_short() -> None:
    for config in (EngineConfig(shared_gpu=True), EngineConfig(shared_gpu=False, gpu_mem_limit_mb=1024)):
        options = provider_options(config, CUDA, cuda_graph=True, memory=256 * 2**20)
        assert options["cudnn_conv_algo_search"] == "HEURISTIC" and options["cudnn_conv_use_max_workspace"] == "0"
        assert options["gpu_mem_limit"] == 256 * 2**20 and options["enable_cuda_graph"] == "1"


def test_the_memory_limit_is_shared_among_sessions_by_batch_size() -> None:
    planned = [1, 2, 4, 8]
    shares = [memory_share(1500, b, planned) for b in planned]
    assert shares == [100 * 2**20, 200 * 2**20, 400 * 2**20, 800 * 2**20]
    assert sum(shares) == 1500 * 2**20
    assert memory_share(None, 8, planned) is None
    # A session bigger than planned never gets more than the whole limit.
    assert memory_share(100, 16, [1]) == 100 * 2**20


def test_tensorrt_is_not_offered_for_frames_of_any_size() -> None:
    plan = plan_providers([TENSORRT, CUDA], {TENSORRT: None, CUDA: None}, frames_in=True)
    assert plan.candidates == [CUDA] and "any height and width" in plan.dropped[TENSORRT]
