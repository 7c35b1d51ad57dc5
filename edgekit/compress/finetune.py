"""Fine-tuning of the compressed network by knowledge distillation from the original.

Loss = (1 - ALPHA) * cross-entropy(labels) + ALPHA * T^2 * KL(teacher || student at temperature T)
(Hinton et al.), Adam with cosine decay. Runs on a CUDA GPU when torch sees one, else the CPU.
The student is the unmerged layout (compress/network.py), so every original convolution keeps its
own parameters during training and the merge afterwards stays exact.
"""

import math

import torch
from torch.nn import functional as F

ALPHA = 0.7
TEMPERATURE = 4.0
LEARNING_RATE = 1e-3
BATCH_SIZE = 64


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def distillation_loss(student_logits, teacher_logits, labels):
    soft = F.kl_div(F.log_softmax(student_logits / TEMPERATURE, 1), F.softmax(teacher_logits / TEMPERATURE, 1),
                    reduction="batchmean") * TEMPERATURE ** 2
    return (1 - ALPHA) * F.cross_entropy(student_logits, labels) + ALPHA * soft


def distill_steps(student, teacher, data, steps: int, progress=None, seed: int = 0,
                  learning_rate: float = LEARNING_RATE) -> None:
    """``steps`` mini-batches of distillation on ``data`` (an importance.HeldOut of training samples)."""
    if steps <= 0:
        return
    run_on = device()
    student.to(run_on).float().train()
    teacher.to(run_on).float().eval()
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(student.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / steps)))
    order = torch.randperm(len(data.y), generator=generator)
    cursor = 0
    for _ in range(steps):
        if cursor + BATCH_SIZE > len(order):
            order, cursor = torch.randperm(len(data.y), generator=generator), 0
        batch = order[cursor:cursor + BATCH_SIZE]
        cursor += BATCH_SIZE
        x, y = data.x[batch].to(run_on), data.y[batch].to(run_on)
        with torch.no_grad():
            teacher_logits = teacher(x)
        loss = distillation_loss(student(x), teacher_logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if progress:
            progress()
    student.cpu().eval()
    teacher.cpu()


def steps_for(epochs: int, samples: int) -> int:
    return epochs * max(1, samples // BATCH_SIZE)
