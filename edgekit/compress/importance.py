"""The importance table I: how much accuracy a candidate costs, measured on held-out data.

The fast proxy (``proxy``): the network with the candidate's activations removed (and, in
LayerMerge, its dropped convolutions replaced by identities), with batch-norm re-estimation, then
the held-out cross-entropy; importance = original loss - that loss (0 for a single convolution,
negative when the candidate hurts). BN re-estimation on folded convolutions: the last kept
convolution of the candidate is rescaled per channel so that its pre-activation output has the
mean and standard deviation it had in the original network (what re-estimating the BN statistics
of the unfolded network does at that layer). The papers' strength (``finetuned``): the same network
after a short distillation fine-tune. ``rank_agreement`` compares the two (Spearman's rho).
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from edgekit.compress.chain import Chain
from edgekit.compress.network import ChainNetwork
from edgekit.compress.segment import Plan, Segment

CALIBRATION_SAMPLES = 256


@dataclass
class HeldOut:
    x: torch.Tensor  # NCHW float
    y: torch.Tensor  # class indices

    @classmethod
    def from_arrays(cls, x_nhwc: np.ndarray, y: np.ndarray) -> "HeldOut":
        return cls(torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))).float(),
                   torch.from_numpy(np.asarray(y, dtype=np.int64)))


def candidate_plan(chain: Chain, segments: list[Segment]) -> Plan:
    """The identity plan with ``segments`` in place of the single convolutions they cover."""
    chosen, position = [], 0
    for segment in sorted(segments, key=lambda s: s.start):
        chosen += [Segment(k, k + 1) for k in range(position, segment.start)]
        chosen.append(segment)
        position = segment.end
    return Plan(chosen + [Segment(k, k + 1) for k in range(position, chain.length)])


def span_segments(start: int, end: int) -> list[Segment]:
    """A linear span (dp mode): activations inside removed, every convolution kept with its own padding."""
    return [Segment(k, k + 1, keep_activation=(k + 1 == end)) for k in range(start, end)]


@torch.no_grad()
def _summed(network, data: HeldOut, statistic, batch_size: int = 256) -> float:
    """The sum of ``statistic(logits, labels)`` over held-out batches."""
    network.eval()
    total = 0.0
    for begin in range(0, len(data.y), batch_size):
        total += float(statistic(network(data.x[begin:begin + batch_size]), data.y[begin:begin + batch_size]))
    return total


def loss_of(network, data: HeldOut) -> float:
    """Mean cross-entropy."""
    return _summed(network, data, lambda logits, y: F.cross_entropy(logits, y, reduction="sum")) / len(data.y)


def accuracy_of(network, data: HeldOut) -> float:
    """Top-1 accuracy in percent."""
    return 100.0 * _summed(network, data, lambda logits, y: (logits.argmax(1) == y).sum()) / len(data.y)


@torch.no_grad()
def reestimate(network: ChainNetwork, original: ChainNetwork, position: int, x: torch.Tensor) -> None:
    """Give convolution ``position`` of ``network`` the per-channel output statistics it has in ``original``."""
    raw_original, raw_new = {}, {}
    original.backbone(x, stop=position, raw=raw_original)
    network.backbone(x, stop=position, raw=raw_new)
    reference, current = raw_original[position], raw_new[position]
    mean_ref, std_ref = reference.mean((0, 2, 3)), reference.std((0, 2, 3))
    mean_now, std_now = current.mean((0, 2, 3)), current.std((0, 2, 3))
    scale = std_ref / std_now.clamp_min(1e-8)
    conv = network.convs[str(position)]
    conv.weight.mul_(scale.reshape(-1, 1, 1, 1).to(conv.weight.dtype))
    conv.bias.copy_((conv.bias - mean_now) * scale + mean_ref)


class ImportanceTable:
    """Proxy importance of candidates (segments replacing part of the identity plan), memoised."""

    def __init__(self, chain: Chain, data: HeldOut, progress=None):
        self.chain = chain
        self.data = data
        self.original = ChainNetwork(chain).float()
        self.base_loss = loss_of(self.original, data)
        self.calibration = data.x[:CALIBRATION_SAMPLES]
        self.progress = progress
        self.cache: dict = {}

    def network_for(self, segments: list[Segment]) -> ChainNetwork:
        network = ChainNetwork(self.chain, candidate_plan(self.chain, segments)).float()
        last = max(k for s in segments for k in s.convs)
        reestimate(network, self.original, last, self.calibration)
        return network

    def importance(self, segments: list[Segment]) -> float:
        key = tuple(segments)
        if all(s.end == s.start + 1 and s.keep_activation for s in segments):
            return 0.0
        if key not in self.cache:
            self.cache[key] = self.base_loss - loss_of(self.network_for(segments), self.data)
            if self.progress:
                self.progress()
        return self.cache[key]


def finetuned_importance(table: ImportanceTable, segments: list[Segment], train: HeldOut, steps: int) -> float:
    """The papers' importance: loss after a short distillation fine-tune of the changed network."""
    from edgekit.compress.finetune import distill_steps

    network = table.network_for(segments)
    distill_steps(network, table.original, train, steps)
    return table.base_loss - loss_of(network, table.data)


def spearman(a, b) -> float:
    ranks_a = np.argsort(np.argsort(a)).astype(float)
    ranks_b = np.argsort(np.argsort(b)).astype(float)
    return float(np.corrcoef(ranks_a, ranks_b)[0, 1])
