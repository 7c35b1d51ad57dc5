"""Code generation: TVM-generated int8 kernels as plain C functions, and the emitted program."""
