"""Deciding the providers: pure, from what is asked and what the load check found."""

from __future__ import annotations

import pytest

from edgevision.inference.providers import CPU, CUDA, TENSORRT, plan_providers, requested_providers


def test_tensorrt_only_when_wanted() -> None:
    assert requested_providers("auto") == [CUDA, CPU]
    assert requested_providers("auto", use_tensorrt=True)[0] == TENSORRT
    assert requested_providers("cpu") == [CPU]
    with pytest.raises(ValueError, match="unknown provider"):
        requested_providers("opencl")  # type: ignore[arg-type]


def test_a_provider_whose_libraries_do_not_load_is_dropped_with_the_reason() -> None:
    plan = plan_providers([CUDA, CPU], {CUDA: "libcublasLt.so.13: cannot open shared object file", CPU: None})
    assert plan.candidates == [CPU] and not plan.gpu_possible
    assert "libcublasLt" in plan.dropped[CUDA]


def test_gpu_only_options_are_declined_without_a_gpu_and_kept_with_one() -> None:
    without = plan_providers([CUDA, CPU], {CUDA: "no", CPU: None}, fp16=True, cuda_graph=True)
    assert not without.fp16 and not without.cuda_graph
    assert set(without.declined) == {"fp16", "cuda_graph"}
    with_gpu = plan_providers([CUDA, CPU], {CUDA: None, CPU: None}, fp16=True, cuda_graph=True)
    assert with_gpu.fp16 and with_gpu.cuda_graph and with_gpu.declined == {} and with_gpu.gpu_possible
    # CUDA graphs are a CUDA provider option: TensorRT alone does not take them.
    trt = plan_providers([TENSORRT, CPU], {TENSORRT: None, CPU: None}, cuda_graph=True)
    assert not trt.cuda_graph and "cuda_graph" in trt.declined
    # No fp16 copy can be made (e.g. no builder given): declined rather than silently ignored.
    assert "fp16" in plan_providers([CUDA, CPU], {CUDA: None}, fp16=True, fp16_available=False).declined
