"""Graph rewrites, one verb_object function per file, run in the order of ``pipeline.FLOAT_PIPELINE``
(float graphs) or ``pipeline.INT8_PIPELINE`` (imported int8 graphs).

A pass takes a Graph, rewrites it in place and returns ``(graph, changed)``; its docstring states
the rewrite and the guards under which it does not fire.
"""

from edgekit.passes.pipeline import FLOAT_PIPELINE, INT8_PIPELINE, run_pipeline

__all__ = ["FLOAT_PIPELINE", "INT8_PIPELINE", "run_pipeline"]
