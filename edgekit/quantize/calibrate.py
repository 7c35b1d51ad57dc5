"""Calibration: run the float graph on real samples and record every activation's range."""

from edgekit.ir.interpreter import run_graph
from edgekit.quantize.observers import make_observer


def calibrate(graph, samples, scheme, progress=None) -> dict[str, tuple[float, float]]:
    """Range (low, high) of every activation tensor over ``samples`` (each a graph input array)."""
    observers = {t.name: make_observer(scheme) for t in graph.activations()}
    count = 0
    for sample in samples:
        values = run_graph(graph, [sample], mode="float", keep_all=True)
        for name, observer in observers.items():
            observer.update(values[name])
        count += 1
        if progress is not None:
            progress()
    if count == 0:
        raise ValueError("calibration needs at least one sample")
    return {name: observer.range() for name, observer in observers.items()}
