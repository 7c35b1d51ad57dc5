"""The static memory plan: live ranges, buffer sharing, arena allocation, plan checks and the
geometry of patch-based inference."""

from edgekit.memory.buffer_sharing import Alias, Buffer, share_buffers
from edgekit.memory.greedy_allocation import ALLOCATORS, first_fit_by_first_use, greedy_by_size, place_in_order
from edgekit.memory.live_range import LiveRange, live_ranges
from edgekit.memory.patch_window import (LayerWindow, Patch, PatchPlan, Region, SpatialLayer, plan_patches,
                                         split_ranges)
from edgekit.memory.plan import MemoryPlan, StepUsage, TensorPlacement, plan_memory
from edgekit.memory.plan_check import PlanError, verify_plan
from edgekit.memory.timeline import render_timeline

__all__ = [
    "ALLOCATORS", "Alias", "Buffer", "LayerWindow", "LiveRange", "MemoryPlan", "Patch", "PatchPlan", "PlanError",
    "Region", "SpatialLayer", "StepUsage", "TensorPlacement", "first_fit_by_first_use", "greedy_by_size",
    "live_ranges", "place_in_order", "plan_memory", "plan_patches", "render_timeline",
    "share_buffers", "split_ranges", "verify_plan",
]
