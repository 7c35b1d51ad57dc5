"""The importers under a seeded fuzz (tests/fuzz_importers.py): a few hundred mutated files per format
must each load or end in a one-line EdgekitError; no other exception, hang or signal. `make fuzz`
runs the same harness on 10,000 inputs per format.
"""

import pytest

from fuzz_importers import FORMATS, run_format

COUNT = {"tflite": 300, "onnx": 200, "pt": 200, "ek": 300, "npy": 300}
SEED = 20261205


@pytest.mark.parametrize("fmt", FORMATS)
def test_fuzzed_files_end_in_clean_errors(fmt, tmp_path, shared_dir):
    summary = run_format(fmt, COUNT[fmt], SEED, per_input_s=30.0, crashes=tmp_path / "findings", timeout_s=900)
    assert summary["inputs"] == COUNT[fmt], summary
    assert summary["findings"] == [], summary["findings"][:5]
    # the fuzz reaches both outcomes: some mutants still load, most are refused
    assert summary["loaded"] > 0 and summary["edgekit_errors"] > 0, summary
