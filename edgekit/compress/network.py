"""A chain under a plan as a trainable torch module (NCHW), and its export to ONNX.

The module runs every segment *unmerged* in the layout of merge.segment_layout (padding moved to
the first convolution, inner activations removed, folded skips cropped or zero-padded to align,
dropped convolutions skipped), so it computes exactly what the merged convolution computes and can
be fine-tuned with the original's per-layer parameters. After training, ``to_chain`` reads the
weights back and merge.merge_plan merges them; a merged chain (one segment per convolution) exported
by ``export_onnx`` is what ``edgekit compile`` reads.
"""

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from edgekit.compress.chain import HEAD_INPUT, Chain
from edgekit.compress.merge import segment_layout, skip_crop
from edgekit.compress.segment import Plan
from edgekit.errors import UnsupportedOpError


def activate(x, activation):
    if activation is None:
        return x
    if activation == "relu":
        return F.relu(x)
    if activation == "relu6":
        return F.hardtanh(x, 0.0, 6.0)
    if activation == "relu_n1_to_1":
        return F.hardtanh(x, -1.0, 1.0)
    raise ValueError(f"unknown activation {activation!r}")


def _conv_module(layer, padding) -> nn.Conv2d:
    """An nn.Conv2d holding the layer's weights; symmetric padding inside it, else none (F.pad before)."""
    symmetric = padding[0] == padding[2] and padding[1] == padding[3]
    kh, kw = layer.kernel
    groups = layer.in_channels if layer.depthwise else 1
    conv = nn.Conv2d(layer.in_channels, layer.out_channels, (kh, kw), layer.stride,
                     (padding[0], padding[1]) if symmetric else 0, groups=groups, bias=True, dtype=torch.float64)
    weight = layer.weight.transpose(2, 0, 1)[:, None] if layer.depthwise else layer.weight.transpose(0, 3, 1, 2)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
        conv.bias.copy_(torch.from_numpy(layer.bias))
    conv.explicit_padding = None if symmetric else (padding[1], padding[3], padding[0], padding[2])
    return conv


def _run_conv(conv: nn.Conv2d, x):
    if conv.explicit_padding is not None:
        x = F.pad(x, conv.explicit_padding)
    return conv(x)


class ChainNetwork(nn.Module):
    """Chain + plan -> NCHW module; ``forward`` returns the head's output (logits)."""

    def __init__(self, chain: Chain, plan: Plan | None = None):
        super().__init__()
        self.chain = chain
        self.plan = plan or Plan.identity(chain)
        self.layouts = [segment_layout(chain, segment) for segment in self.plan.segments]
        self.convs = nn.ModuleDict()
        for segment, layout in zip(self.plan.segments, self.layouts):
            for k in segment.convs:
                self.convs[str(k)] = _conv_module(chain.layers[k - 1], layout.padding[k])
        self.head = HeadNetwork(chain.head)

    def backbone(self, x, stop: int | None = None, raw: dict | None = None, start: int = 0,
                 earlier: dict | None = None):
        """Positions 0..L (or ``stop``); ``raw`` collects each convolution's pre-activation output.
        With ``start`` > 0, ``x`` is the value at that position (a segment boundary of the plan) and
        ``earlier`` holds the values at earlier positions that skips read, e.g. the original network's:
        a plan that only changes the network after ``start`` need not recompute what comes before."""
        values = {position: value for position, value in (earlier or {}).items() if position < start}
        values[start] = x
        for segment, layout in zip(self.plan.segments, self.layouts):
            if segment.start < start < segment.end:
                raise ValueError(f"position {start} is inside segment {segment.label()}, not a boundary")
            for position in range(max(segment.start, start) + 1, segment.end + 1):
                y = values[position - 1]
                if str(position) in self.convs:
                    y = _run_conv(self.convs[str(position)], y)
                    if raw is not None:
                        raw[position] = y
                    y = activate(y, layout.conv_activation[position])
                residual = self.chain.residual_ending_at(position)
                if residual is not None:
                    skip = values[residual.start]
                    if residual in layout.folded:
                        cut = skip_crop(layout, residual)
                        skip = F.pad(skip, (-cut[1], -cut[3], -cut[0], -cut[2]))
                    y = activate(y + skip, layout.add_activation[position])
                values[position] = y
                if position == stop:
                    return values
        return values

    def forward(self, x):
        return self.head(self.backbone(x)[self.chain.length])

    def to_chain(self) -> Chain:
        """The chain with this module's (possibly trained) weights."""
        chain = self.chain.copy()
        for key, conv in self.convs.items():
            layer = chain.layers[int(key) - 1]
            weight = conv.weight.detach().cpu().double().numpy()
            layer.weight = weight[:, 0].transpose(1, 2, 0).copy() if layer.depthwise else weight.transpose(0, 2, 3, 1).copy()
            layer.bias = conv.bias.detach().cpu().double().numpy().copy()
        chain.head = self.head.to_graph()
        return chain


class HeadNetwork(nn.Module):
    """The head graph (pooling, reshape, classifier, softmax) in torch; 4-D tensors are NCHW."""

    def __init__(self, head):
        super().__init__()
        self.graph = head.copy()
        self.linears = nn.ModuleDict()
        for node in self.graph.nodes:
            if node.op == "fully_connected":
                weight = self.graph.tensors[node.inputs[1]].data
                linear = nn.Linear(weight.shape[1], weight.shape[0], dtype=torch.float64)
                with torch.no_grad():
                    linear.weight.copy_(torch.from_numpy(weight.astype(np.float64)))
                    bias = self.graph.tensors[node.inputs[2]].data if len(node.inputs) > 2 else np.zeros(weight.shape[0])
                    linear.bias.copy_(torch.from_numpy(np.asarray(bias, dtype=np.float64)))
                self.linears[str(len(self.linears))] = linear
            elif node.op not in HEAD_OPS:
                raise UnsupportedOpError(f"node {node.name} ({node.op}) after the convolutions is not supported by "
                                         f"depth compression; supported there: {', '.join(sorted(HEAD_OPS))}")

    def forward(self, x):
        values = {HEAD_INPUT: x}
        linear_index = 0
        for node in self.graph.nodes:
            x = values[node.inputs[0]]
            if node.op == "fully_connected":
                y = activate(self.linears[str(linear_index)](x.reshape(x.shape[0], -1)), node.attrs.activation)
                linear_index += 1
            else:
                y = HEAD_OPS[node.op](x, node.attrs)
            values[node.output] = y
        return values[self.graph.outputs[0]]

    def to_graph(self):
        graph = self.graph.copy()
        linear_index = 0
        for node in graph.nodes:
            if node.op == "fully_connected":
                linear = self.linears[str(linear_index)]
                graph.tensors[node.inputs[1]].data = linear.weight.detach().cpu().numpy().astype(np.float32)
                if len(node.inputs) > 2:
                    graph.tensors[node.inputs[2]].data = linear.bias.detach().cpu().numpy().astype(np.float32)
                linear_index += 1
        return graph


def _pool(kind):
    def run(x, attrs):
        top, left, bottom, right = attrs.padding
        if (top, left) != (bottom, right):
            raise UnsupportedOpError(f"{kind} pooling with asymmetric padding {attrs.padding} after the convolutions "
                                     "is not supported by depth compression")
        if kind == "avg":
            return activate(F.avg_pool2d(x, attrs.kernel, attrs.stride, (top, left), count_include_pad=False),
                            attrs.activation)
        return activate(F.max_pool2d(x, attrs.kernel, attrs.stride, (top, left)), attrs.activation)
    return run


def _reshape(x, attrs):
    """edgekit reshapes NHWC bytes: go through NHWC so the flatten order is the same (no transpose
    when the spatial size is 1x1, where both orders agree: the usual pooled classifier input)."""
    nhwc = x.dim() == 4 and x.shape[2] * x.shape[3] > 1
    if nhwc:
        x = x.permute(0, 2, 3, 1)
    y = x.reshape((x.shape[0],) + tuple(attrs.shape[1:]))
    return y.permute(0, 3, 1, 2) if nhwc and y.dim() == 4 else y


def _mean(x, attrs):
    nchw_axes = {1: 2, 2: 3, 3: 1}
    axes = [nchw_axes[a] for a in attrs.axes] if x.dim() == 4 else list(attrs.axes)
    y = x.mean(dim=axes, keepdim=attrs.keep_dims)
    return y


HEAD_OPS = {
    "avg_pool2d": _pool("avg"),
    "max_pool2d": _pool("max"),
    "reshape": _reshape,
    "mean": _mean,
    "softmax": lambda x, attrs: torch.softmax(x, dim=-1),
    "fully_connected": None,  # a trainable nn.Linear, see HeadNetwork
}


def export_onnx(chain: Chain, path: Path) -> None:
    """Write ``chain`` (merged: one convolution per layer) as a float32 ONNX model, NCHW input."""
    from edgekit.frontend.torch import _quiet_exporter

    module = ChainNetwork(chain).float().eval()
    height, width, channels = chain.input_shape
    example = torch.zeros(1, channels, height, width)
    with _quiet_exporter():
        torch.onnx.export(module, (example,), str(path), dynamo=True, optimize=True, verbose=False)
