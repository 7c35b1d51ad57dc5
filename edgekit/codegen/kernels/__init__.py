"""TVM-generated int8 kernels, one module per op family: a frozen spec dataclass and a cached generator.

Each generator returns a :class:`~edgekit.codegen.kernels.kernel_source.KernelSource` whose C
defines ``int32_t ek_<family>_s8_<spec hash>(...)``; the shared pieces are the TFLite fixed-point
math (fixed_point.py), padded windows (window.py), the MAC signature and epilogue (mac.py) and
scalar stages for long fixed-point chains such as softmax's exp (scalar_stages.py).
"""
