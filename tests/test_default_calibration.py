"""Without --calib a float image model is calibrated on real photographs that installed packages ship,
never the test photos; only a model without an image input falls back to synthetic inputs, and then
says that accuracy figures are meaningless."""

import subprocess
import sys

import numpy as np
import pytest

from edgekit import api
from edgekit.ir.serialize import save_graph
from edgekit.model_source import load_model
from edgekit.sample_photos import sample_photos


@pytest.fixture(scope="module")
def vww_float(models_dir):
    return load_model(str(models_dir / "mlperf-tiny" / "vww_96_float.tflite"))


def test_sample_photos_are_real_files_and_not_the_test_photos(data_dir):
    photos = sample_photos()
    assert len(photos) >= 10, photos
    assert all(photo.is_file() and photo.stat().st_size > 10_000 for photo in photos)
    test_stems = {path.stem for path in (data_dir / "images").iterdir()}
    assert not test_stems & {photo.stem for photo in photos}


def test_float_image_model_calibrates_on_the_photos(vww_float):
    """Photos are [0, 1] pixels, so the int8 input covers [0, 1] (scale 1/255 at most); Gaussian
    noise would have needed a range several times wider."""
    result = api.quantize(vww_float, None)
    assert not result.synthetic_calibration
    assert result.calibration_samples == len(sample_photos())
    assert "scikit-image" in result.calibration_source and "matplotlib" in result.calibration_source
    assert result.top1_agreement is not None
    graph = result.model.graph
    input_quant = graph.tensors[graph.inputs[0]].quant
    assert input_quant.scalar_scale <= 1.001 / 255
    assert input_quant.dequantize(np.array([-128], np.int8))[0] >= -1e-6


def test_model_without_image_input_falls_back_to_synthetic_and_warns(vww_float, tmp_path):
    """A float graph whose input is a flat vector: nothing real exists, so synthetic, with the warning."""
    from edgekit.ir import Graph, Node, Tensor
    from edgekit.ops.fully_connected import FullyConnectedAttrs

    graph = Graph("vector")
    graph.add_tensor(Tensor("x", (1, 16), "float32"))
    graph.add_tensor(Tensor("w", (4, 16), "float32", np.random.default_rng(0).normal(size=(4, 16)).astype(np.float32)))
    graph.add_tensor(Tensor("y", (1, 4), "float32"))
    graph.nodes.append(Node("fc", "fully_connected", ["x", "w"], ["y"], FullyConnectedAttrs()))
    graph.inputs, graph.outputs = ["x"], ["y"]
    graph.lint()
    path = tmp_path / "vector.ek"
    save_graph(graph, path)
    result = api.quantize(load_model(str(path)), None)
    assert result.synthetic_calibration and "synthetic" in result.calibration_source
    done = subprocess.run([sys.executable, "-m", "edgekit.cli", "quantize", str(path), "-o", str(tmp_path / "q.ek")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "warning" in done.stderr and "meaningless" in done.stderr
