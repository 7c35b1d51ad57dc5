"""Lower a scheduled TIR PrimFunc to one plain C function, without any TVM runtime.

TVM's default pipeline ends in MakePackedAPI, which wraps every kernel in the TVM-FFI packed calling
convention (DLTensor arguments, runtime symbols). A microcontroller has no TVM runtime, so this module
runs the same s_tir/tirx lowering passes but stops before MakePackedAPI; instead
:func:`bind_pointer_params` turns each buffer parameter into a typed pointer parameter and returns 0.
TVM's C code generator then prints ``int32_t name(int8_t* input, ..., int32_t input_offset)``.

What TVM 0.27 does here (checked against the real package): buffer parameters are ``Var``s of
``BufferType`` and a ``DeclBuffer(buffer_var, data=pointer)`` statement binds one to its storage, so
binding a pointer is one ``DeclBuffer`` per parameter in front of the body. No device attributes
are needed when the body allocates nothing but small local scalars.

TVM's C preamble includes TVM runtime headers and defines a library context; we keep only the
function and include :data:`COMPAT_HEADER_NAME` (standard headers only) instead. The signature is
reprinted with ``const`` on read-only pointers.
"""

import re
from dataclasses import dataclass

import tvm
from tvm import ir, s_tir, tirx

COMPAT_HEADER_NAME = "ek_tvm_compat.h"
COMPAT_HEADER_TEXT = """\
/* What TVM-generated edgekit kernels need from C: standard headers only, no TVM runtime. */
#ifndef EK_TVM_COMPAT_H
#define EK_TVM_COMPAT_H
#include <stdbool.h>
#include <stdint.h>
#endif
"""

_TARGET = {"kind": "c"}
_STACK_ARRAY = re.compile(r"^\s+\w+ (\w+)\[(\d+)\];$", flags=re.MULTILINE)


def _lowering_passes() -> list:
    """The s_tir default pipeline up to (not including) AnnotateEntryFunc/MakePackedAPI, minus GPU passes.

    NarrowDataType is left out too: TVM 0.27's fails on nested ``Let`` expressions ("Detected bound
    for high conflicts with memorization"), and TE indices are int32 already.
    """
    return [
        s_tir.transform.CanonicalizeLoop(),
        s_tir.transform.LowerInitBlock(),
        s_tir.transform.PlanAndUpdateBufferAllocationLocation(),
        s_tir.transform.ConvertBlocksToOpaque(),
        s_tir.transform.CompactBufferAllocation(),
        s_tir.transform.LowerMatchBuffer(),
        s_tir.transform.StmtSimplify(),
        s_tir.transform.LowerOpaqueBlock(),
        tirx.transform.FlattenBuffer(),
        s_tir.transform.LoopPartition(),
        tirx.transform.StorageRewrite(),
        s_tir.transform.HoistIfThenElse(),
        tirx.transform.UnrollLoop(),
        s_tir.transform.RenormalizeSplitPattern(),
        tirx.transform.StmtSimplify(),
        tirx.transform.RemoveNoOp(),
        s_tir.transform.RewriteUnsafeSelect(),
        tirx.transform.CommonSubexprElim(),
        tirx.transform.VerifyMemory(),
    ]


def bind_pointer_params(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """Pointer parameters for buffer parameters; return int32 0."""
    params, decls = [], []
    for param in func.params:
        if isinstance(param.ty, tirx.buffer.BufferType):
            pointer = tirx.Var(param.name, ir.PointerType(param.ty.dtype))
            params.append(pointer)
            decls.append(tirx.DeclBuffer(param, data=pointer))
        else:
            params.append(param)
    body = list(func.body.seq) if isinstance(func.body, tirx.SeqStmt) else [func.body]
    body = tirx.SeqStmt([*decls, *body, tirx.Return(tirx.IntImm("int32", 0))])
    return tirx.PrimFunc(params, body, ret_type=ir.PrimType("int32"), attrs=func.attrs)


def _check_plain(body: str, name: str) -> None:
    """Refuse C that needs a TVM runtime or puts arrays on the MCU stack: the schedule must fuse them away."""
    if "TVM" in body:
        raise RuntimeError(f"kernel {name} calls into the TVM runtime:\n{body}")
    arrays = [f"{m.group(1)}[{m.group(2)}]" for m in _STACK_ARRAY.finditer(body) if int(m.group(2)) > 1]
    if arrays:
        raise RuntimeError(f"kernel {name} keeps {', '.join(arrays)} on the stack; inline the stage that makes "
                           "it (compute_inline, reverse_compute_at) so only scalars stay local")


def _definition(source: str, name: str, const_params: frozenset[str]) -> tuple[str, str]:
    """(prototype, body text from the opening brace) of ``name`` in TVM's C output."""
    match = re.search(rf"^(?:TVM_DLL )?int32_t {re.escape(name)}\((.*)\) \{{$", source, flags=re.MULTILINE)
    if match is None:
        raise RuntimeError(f"TVM's C output has no definition of {name}:\n{source}")
    params = []
    for param in match.group(1).split(", "):
        param_name = param.rsplit(" ", 1)[-1].lstrip("*")
        params.append(f"const {param}" if param_name in const_params else param)
    prototype = f"int32_t {name}({', '.join(params)})"
    return prototype, source[match.end() - 1:]


@dataclass(frozen=True)
class LoweredC:
    """A lowered kernel: its prototype and a C translation unit defining it."""

    prototype: str
    c_code: str


def lower_to_c(func: tirx.PrimFunc, name: str, const_params=()) -> LoweredC:
    """Lower a scheduled PrimFunc to a C translation unit defining ``int32_t name(...)``.

    ``const_params`` names the pointer parameters the kernel only reads; they become ``const``.
    """
    mod = tvm.IRModule({name: func.with_attr("global_symbol", name)})
    mod = tirx.transform.BindTarget(tvm.target.Target(_TARGET))(mod)
    mod = tvm.ir.transform.Sequential(_lowering_passes())(mod)
    plain = bind_pointer_params(mod[name])
    mod = tirx.transform.LowerIntrin()(tvm.IRModule({name: plain}))
    source = tvm.get_global_func("target.build.c")(mod, tvm.target.Target(_TARGET)).inspect_source()
    prototype, body = _definition(source, name, frozenset(const_params))
    _check_plain(body, name)
    return LoweredC(prototype, f'#include "{COMPAT_HEADER_NAME}"\n\n{prototype} {body}')
