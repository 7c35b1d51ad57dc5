"""Graph rewrites, one verb_object function per file, run in the order of ``pipeline.FLOAT_PIPELINE``.

A pass takes a Graph, rewrites it in place and returns ``(graph, changed)``; its docstring states
the rewrite and the guards under which it does not fire.
"""

from edgekit.passes.pipeline import FLOAT_PIPELINE, run_pipeline

__all__ = ["FLOAT_PIPELINE", "run_pipeline"]
