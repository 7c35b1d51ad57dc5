"""The ordered float pipeline run on every imported graph before quantization."""

from edgekit.passes.convert_mean_to_avg_pool import convert_mean_to_avg_pool
from edgekit.passes.fold_batchnorm import fold_batchnorm
from edgekit.passes.fuse_activation import fuse_activation
from edgekit.passes.remove_identities import remove_identities

FLOAT_PIPELINE = (remove_identities, fold_batchnorm, fuse_activation, convert_mean_to_avg_pool)


def run_pipeline(graph, passes=FLOAT_PIPELINE):
    """Run each pass once, in order, linting after each so a broken rewrite is caught where it happens."""
    for rewrite in passes:
        graph, _ = rewrite(graph)
        graph.lint()
    return graph
