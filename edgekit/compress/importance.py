"""The importance table I: how much accuracy a candidate costs, measured on held-out data.

The fast proxy (``proxy``): the network with the candidate's activations removed (and, in
LayerMerge, its dropped convolutions replaced by identities), with batch-norm re-estimation, then
the held-out loss; importance = original loss - that loss (0 for a single convolution, negative
when the candidate hurts). The loss is the cross-entropy against the data's labels, or, for data
without labels (``against="original"``), the KL divergence from the original network's softmax
to the candidate's: the original's own top-1 answers as hard labels would reward a candidate for
being more confident than the original, KL is 0 for the original and grows with any change.
BN re-estimation on folded convolutions: the last kept convolution of the candidate is rescaled
per channel so that its pre-activation output has the mean and standard deviation it had in the
original network (what re-estimating the BN statistics of the unfolded network does at that layer).

A candidate changes the network only after its first position, so the original's values at every
position (and its per-channel statistics) are computed once on the held-out samples and each
candidate runs from its first position on: for MobileNetV2 224 that is a fraction of a forward
pass per candidate instead of three. The cache holds at most PREFIX_BYTES; the proxy uses the
first held-out samples that fit (all of them for the benchmarks' 9 photos or 128 digits).
The papers' strength (``finetuned``): the same network after a short distillation fine-tune.
``rank_agreement`` compares the two (Spearman's rho).
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from edgekit.compress.chain import Chain
from edgekit.compress.network import ChainNetwork
from edgekit.compress.segment import Plan, Segment

CALIBRATION_SAMPLES = 256
BATCH_SIZE = 256
PREFIX_BYTES = 1 << 30  # the original's cached values, float32, all positions
AGAINST = ("labels", "original")


@dataclass
class HeldOut:
    x: torch.Tensor  # NCHW float
    y: torch.Tensor  # class indices

    @classmethod
    def from_arrays(cls, x_nhwc: np.ndarray, y: np.ndarray) -> "HeldOut":
        return cls(torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))).float(),
                   torch.from_numpy(np.asarray(y, dtype=np.int64)))

    def __len__(self) -> int:
        return len(self.y)

    def first(self, count: int) -> "HeldOut":
        return HeldOut(self.x[:count], self.y[:count])


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
def _summed(network, data: HeldOut, statistic, batch_size: int = BATCH_SIZE) -> float:
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


def channel_statistics(raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation of an NCHW pre-activation output."""
    return raw.mean((0, 2, 3)), raw.std((0, 2, 3))


@torch.no_grad()
def match_statistics(conv, current: torch.Tensor, reference: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Rescale ``conv`` so that its output ``current`` gets the per-channel mean and std ``reference``."""
    mean_ref, std_ref = reference
    mean_now, std_now = channel_statistics(current)
    scale = std_ref / std_now.clamp_min(1e-8)
    conv.weight.mul_(scale.reshape(-1, 1, 1, 1).to(conv.weight.dtype))
    conv.bias.copy_((conv.bias - mean_now) * scale + mean_ref)


@torch.no_grad()
def reestimate(network: ChainNetwork, original: ChainNetwork, position: int, x: torch.Tensor) -> None:
    """Give convolution ``position`` of ``network`` the per-channel output statistics it has in ``original``."""
    raw_original, raw_new = {}, {}
    original.backbone(x, stop=position, raw=raw_original)
    network.backbone(x, stop=position, raw=raw_new)
    match_statistics(network.convs[str(position)], raw_new[position], channel_statistics(raw_original[position]))


def _channels_last(network: ChainNetwork) -> ChainNetwork:
    """NHWC in memory: torch's CPU convolutions (depthwise above all) run faster so (1.5x for MobileNetV2)."""
    return network.to(memory_format=torch.channels_last)


class ImportanceTable:
    """Proxy importance of candidates (segments replacing part of the identity plan), memoised.

    ``against``: "labels" (cross-entropy against ``data.y``) or "original" (KL divergence from the
    original's softmax; ``data.y`` unused), see the module doc."""

    def __init__(self, chain: Chain, data: HeldOut, progress=None, against: str = "labels"):
        if against not in AGAINST:
            raise ValueError(f"against={against!r}: expected one of {', '.join(AGAINST)}")
        self.chain = chain
        self.against = against
        per_sample = 4 * sum(int(np.prod(chain.shape_at(p))) for p in range(chain.length + 1))
        self.data = data.first(max(1, min(len(data), PREFIX_BYTES // per_sample)))
        self.original = _channels_last(ChainNetwork(chain).float().eval())
        self.calibration = self.data.x[:CALIBRATION_SAMPLES]
        self.progress = progress
        self.cache: dict = {}
        self._cache_original()

    @torch.no_grad()
    def _cache_original(self) -> None:
        """The original's values at every position on the held-out samples, its per-channel statistics
        on the calibration samples, its logits (the reference of ``against="original"``) and loss."""
        batches, raw = [], {}
        for begin in range(0, len(self.data), BATCH_SIZE):
            batch = self.data.x[begin:begin + BATCH_SIZE].contiguous(memory_format=torch.channels_last)
            batches.append(self.original.backbone(batch, raw=raw if begin == 0 else None))
        self.prefix = {p: torch.cat([values[p] for values in batches]) for p in batches[0]}
        self.statistics = {p: channel_statistics(r[:CALIBRATION_SAMPLES]) for p, r in raw.items()}
        self.reference = self.original.head(self.prefix[self.chain.length])
        self.base_loss = self._loss(self.reference)

    def _loss(self, logits: torch.Tensor) -> float:
        if self.against == "labels":
            return float(F.cross_entropy(logits, self.data.y))
        return float(F.kl_div(F.log_softmax(logits, 1), F.log_softmax(self.reference, 1), log_target=True,
                              reduction="batchmean"))

    def network_for(self, segments: list[Segment]) -> ChainNetwork:
        """The candidate's network, its last kept convolution re-estimated on the calibration samples."""
        network = _channels_last(ChainNetwork(self.chain, candidate_plan(self.chain, segments)).float().eval())
        start = min(s.start for s in segments)
        last = max(k for s in segments for k in s.convs)
        raw = {}
        with torch.no_grad():
            network.backbone(self.prefix[start][:CALIBRATION_SAMPLES], stop=last, raw=raw, start=start,
                             earlier={p: v[:CALIBRATION_SAMPLES] for p, v in self.prefix.items() if p < start})
        match_statistics(network.convs[str(last)], raw[last], self.statistics[last])
        return network

    @torch.no_grad()
    def loss(self, network: ChainNetwork, start: int = 0) -> float:
        """The held-out loss of a network equal to the original before position ``start``."""
        logits = []
        for begin in range(0, len(self.data), BATCH_SIZE):
            batch = {p: v[begin:begin + BATCH_SIZE] for p, v in self.prefix.items() if p <= start}
            values = network.backbone(batch[start], start=start, earlier=batch)
            logits.append(network.head(values[self.chain.length]))
        return self._loss(torch.cat(logits))

    def importance(self, segments: list[Segment]) -> float:
        key = tuple(segments)
        if all(s.end == s.start + 1 and s.keep_activation for s in segments):
            return 0.0
        if key not in self.cache:
            network = self.network_for(segments)
            self.cache[key] = self.base_loss - self.loss(network, min(s.start for s in segments))
            if self.progress:
                self.progress()
        return self.cache[key]


def finetuned_importance(table: ImportanceTable, segments: list[Segment], train: HeldOut, steps: int) -> float:
    """The papers' importance: loss after a short distillation fine-tune of the changed network."""
    from edgekit.compress.finetune import distill_steps

    network = table.network_for(segments)
    distill_steps(network, table.original, train, steps)
    return table.base_loss - table.loss(network.eval())


def spearman(a, b) -> float:
    ranks_a = np.argsort(np.argsort(a)).astype(float)
    ranks_b = np.argsort(np.argsort(b)).astype(float)
    return float(np.corrcoef(ranks_a, ranks_b)[0, 1])
