"""The `edgekit` command line: parsing and printing only; the work is in api.py.

Exit codes: 0 success, 2 bad input (file, name, unsupported op), 3 does not fit the target,
4 toolchain/emulator failure, 5 firmware output differs from the reference, 6 the firmware faulted (or its
stack overflowed, or a kernel returned an error status).
"""

import argparse
import json
import os
import signal
import sys

from edgekit import __version__
from edgekit.errors import DoesNotFitError, EdgekitError


class _Parser(argparse.ArgumentParser):
    """argparse with edgekit's usage errors: one `edgekit: error:` line, exit code 2 (subcommands inherit it)."""

    def error(self, message):
        print(f"edgekit: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(2)


def _number_in(convert, low: float, high: float):
    """An argparse type: ``convert(text)`` within [low, high] (NaN is outside)."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is outside {low:g} to {high:g}")
        return value
    return parse


def _model_options(parser):
    parser.add_argument("model", help="zoo name (see `edgekit zoo`) or a .tflite/.onnx/.pt/.ek file")
    parser.add_argument("--resolution", type=int, help="input size in pixels (zoo models and .pt files)")
    parser.add_argument("--width", type=float, help="width multiplier (zoo models)")
    parser.add_argument("--num-classes", type=int, help="number of classes (zoo models)")
    parser.add_argument("--pretrained", action=argparse.BooleanOptionalAction, default=None,
                        help="zoo models: demand the pretrained weights (an error where there are none), or build "
                             "with random weights (default: pretrained where they exist, else random with a note)")


def _json_option(parser):
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="edgekit",
        description="Compile a trained CNN into int8 firmware for a Cortex-M board, verify it in QEMU, and "
                    "report where every byte goes.",
        epilog="Typical flow: edgekit compile mobilenetv2 --target cortex-m7 --calib IMAGES -o build/mbv2; "
               "edgekit run build/mbv2; edgekit report build/mbv2.",
    )
    parser.add_argument("--version", action="version", version=f"edgekit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("zoo", help="list the built-in models")
    _json_option(p)

    p = sub.add_parser("targets", help="list the CPUs (--target, emulated) and the boards (--board, flashable)")
    _json_option(p)

    p = sub.add_parser("ops", help="list the supported ops and their constraints (from the op definitions)")
    _json_option(p)

    p = sub.add_parser("inspect", help="ops, shapes, MACs, parameters and activation sizes per layer")
    _model_options(p)
    _json_option(p)

    p = sub.add_parser("quantize", help="post-training int8 quantization calibrated on real samples")
    _model_options(p)
    p.add_argument("--calib", help="folder of calibration images or .npy inputs (default for image models: sample "
                                   "photographs shipped with scikit-image and matplotlib)")
    p.add_argument("--scheme", default="int8", help="quantization scheme: quant/NAME.toml or a path "
                                                    "(default int8: per-channel weights)")
    p.add_argument("-o", "--output", required=True, help="where to write the quantized model (.ek)")
    p.add_argument("--force", action="store_true", help="overwrite the output file if it exists")
    _json_option(p)

    p = sub.add_parser("infer", help="run the reference interpreter on one input")
    _model_options(p)
    p.add_argument("--input", required=True, help=".npy input (model layout NHWC, or NCHW for 3-channel images), "
                                                  "or an image file")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--int8", dest="mode", action="store_const", const="int8",
                      help="exact integer arithmetic, as TFLite Micro (default for int8 models, float interface "
                           "included; needs an int8 model)")
    mode.add_argument("--float", dest="mode", action="store_const", const="float", help="float arithmetic")
    p.add_argument("--output", help="write the output to this .npy file (several outputs: a .npz, one array per "
                                    "output, keys output_0.. in the model's output order)")
    p.add_argument("--force", action="store_true", help="overwrite the output file if it exists")
    _json_option(p)

    p = sub.add_parser("compile", help="quantize, plan memory, generate C with TVM kernels, and link firmware")
    _model_options(p)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--target", help="a CPU (see `edgekit targets`): runs in QEMU with its default board's budget")
    where.add_argument("--board", help="a board (see `edgekit targets`): an image for the board itself, "
                                       "printing over its UART; flash it with `edgekit flash`")
    where.add_argument("--target-file", help="your own board TOML (same keys as targets/boards/nrf52840-dk.toml), "
                                             "emulated on its CPU like --target")
    p.add_argument("--calib", help="folder of calibration images or .npy inputs (float models; default for image "
                                   "models: sample photographs shipped with scikit-image and matplotlib)")
    p.add_argument("--scheme", default="int8", help="quantization scheme (default int8)")
    p.add_argument("--patch", default="fit",
                   help="schedule: fit (default: layer by layer if it fits the target, else the patched plan that "
                        "fits with the fewest recomputed MACs), off (layer by layer), auto (smallest peak within "
                        "--max-patch-overhead), or SPLIT:N[:ORDER] (ORDER: row-major, serpentine, column-major)")
    p.add_argument("--max-patch-overhead", type=_number_in(float, 0.0, 10.0), default=0.20,
                   help="bound on recomputed MACs for --patch auto (fraction, default 0.20)")
    p.add_argument("--input-by-patch", action="store_true",
                   help="no input frame in SRAM: the application hands over each patch's input window through "
                        "ek_model_input_window() (needs --patch)")
    p.add_argument("--tune", action="store_true",
                   help="measure every kernel variant of each layer in QEMU and keep the fastest (cached per "
                        "shape and target, so a second compile measures nothing)")
    p.add_argument("-o", "--output", help="build folder (default build/MODEL-TARGET)")
    p.add_argument("--force", action="store_true", help="replace an existing build folder")
    _json_option(p)

    p = sub.add_parser("compress", help="depth compression: merge convolutions by dynamic programming against "
                                        "a latency table measured on the target; writes a float ONNX model")
    _model_options(p)
    p.add_argument("--target", required=True, help="target name (see `edgekit targets`)")
    p.add_argument("--budget", type=_number_in(float, 0.0, 1.0), required=True,
                   help="instructions of the result as a fraction of the original's (e.g. 0.7)")
    p.add_argument("--data", required=True, help="image folder with one subfolder per class, or an .npz with "
                                                 "x (N,H,W,C float or uint8) and y (N labels)")
    p.add_argument("--mode", default="dp", choices=["dp", "layermerge"],
                   help="dp: ICML'23 two-stage DP (merge only); layermerge: ICML'24 (merge and drop convolutions)")
    p.add_argument("--epochs", type=_number_in(int, 0, 1000), default=1, help="distillation fine-tuning epochs (0: none; default 1)")
    p.add_argument("--max-kernel", type=_number_in(int, 1, 15), default=7,
                   help="largest merged kernel size considered (default 7; cost grows with it)")
    p.add_argument("--estimate", action="store_true",
                   help="estimate latency from MACs instead of measuring every candidate in QEMU")
    p.add_argument("--no-measure", dest="measure", action="store_false",
                   help="skip compiling and running both models in QEMU at the end")
    p.add_argument("-o", "--output", required=True, help="where to write the compressed float model (.onnx)")
    p.add_argument("--force", action="store_true", help="overwrite the output file if it exists")
    _json_option(p)

    p = sub.add_parser("run", help="run a build in QEMU and compare with the integer and float references")
    p.add_argument("build", help="build folder written by `edgekit compile`")
    p.add_argument("--inputs", help=".npy of N stacked inputs (model input dtype) or a folder of images "
                                    "(default: the test inputs chosen at compile time)")
    p.add_argument("--outputs", help="write the N firmware outputs to this .npy file, stacked (several outputs: "
                                     "a .npz, one stacked array per output)")
    p.add_argument("--timeout", type=_number_in(float, 0.001, 86_400.0), default=600.0,
                   help="seconds one inference may take in QEMU before it counts as hung (default 600)")
    p.add_argument("--force", action="store_true", help="overwrite the outputs file if it exists")
    _json_option(p)

    p = sub.add_parser("flash", help="write a board build's image to the board (pyOCD, OpenOCD or st-flash)")
    p.add_argument("build", help="build folder written by `edgekit compile --board NAME`")
    p.add_argument("--probe", choices=("pyocd", "openocd", "stlink"),
                   help="flash tool (default: the first that sees an attached probe: pyOCD, then st-flash)")
    p.add_argument("--dry-run", action="store_true", help="print the exact commands instead of running them")
    _json_option(p)

    p = sub.add_parser("monitor", help="read a flashed board's report from its serial port and check its outputs")
    p.add_argument("build", help="the board build that was flashed")
    p.add_argument("--port", required=True, help="serial port of the board's virtual COM port, e.g. /dev/ttyACM0")
    p.add_argument("--baud", type=_number_in(int, 1, 20_000_000), help="baud rate (default: the board file's, 115200)")
    p.add_argument("--timeout", type=_number_in(float, 0.001, 86_400.0), default=120.0, help="seconds to wait for the report (default 120)")
    _json_option(p)

    p = sub.add_parser("report", help="print the memory and speed report of a build again")
    p.add_argument("build", help="build folder written by `edgekit compile`")
    p.add_argument("--timeline", action="store_true", help="also print the ASCII timeline of the arena "
                                                           "(which tensor sits where, step by step)")
    _json_option(p)
    return parser


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that staging folders and temporary files are removed on the
    way out (a BaseException like KeyboardInterrupt: no ``except Exception`` swallows it)."""


def _raise_terminated(signum, frame):
    raise Terminated()


def main(argv=None) -> int:
    from edgekit import commands

    args = build_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return getattr(commands, f"cmd_{args.command}")(args) or 0
    except BrokenPipeError:  # `edgekit targets --json | head`: the reader has gone, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Terminated:
        print("edgekit: terminated; temporary files removed", file=sys.stderr)
        return 143
    except EdgekitError as error:
        if getattr(args, "json", False):
            doc = {"error": str(error), "exit_code": error.exit_code}
            if isinstance(error, DoesNotFitError):
                doc.update(fits=False, **error.numbers)
            print(json.dumps(doc))
        print(f"edgekit: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("edgekit: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
