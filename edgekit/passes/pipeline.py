"""The ordered pipelines: FLOAT_PIPELINE on every imported float graph before quantization, and
INT8_PIPELINE, the exact rewrites, on imported int8 graphs (they keep their own quantization)."""

from edgekit.passes.absorb_input_transpose import absorb_input_transpose
from edgekit.passes.convert_mean_to_avg_pool import convert_mean_to_avg_pool
from edgekit.passes.fold_batchnorm import fold_batchnorm
from edgekit.passes.fold_pad import fold_pad
from edgekit.passes.fuse_activation import fuse_activation
from edgekit.passes.remove_identities import remove_identities

FLOAT_PIPELINE = (absorb_input_transpose, remove_identities, fold_pad, fold_batchnorm, fuse_activation,
                  convert_mean_to_avg_pool)
INT8_PIPELINE = (absorb_input_transpose, fold_pad)


def run_pipeline(graph, passes=FLOAT_PIPELINE):
    """Run each pass once, in order, linting after each so a broken rewrite is caught where it happens."""
    for rewrite in passes:
        graph, _ = rewrite(graph)
        graph.lint()
    return graph
