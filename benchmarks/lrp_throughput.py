"""LRP throughput: CPU time per image of the engine relative to gradient x input.

Builds a VGG-style net (4 conv blocks of 32/64/128/128 channels, 2 dense layers, random
weights) and times, in one process with the same torch threads: forward only, gradient x
input, the default "thesis" composite, the thesis composite also reading the relevance at
an inner layer (``attribute_layers``, issue 18: goal within 1.1x of "thesis") and the
"epsilon" composite, at 64x64 batch 32 and 224x224 batch 8 (issue 2, "Speed"). Peak memory
of each measurement is the maximum resident set of a fresh subprocess running only that
measurement.

    flock /tmp/spray-heavy.lock .venv/bin/python benchmarks/lrp_throughput.py
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

from spray.lrp import attribute, attribute_layers

CONFIGS = [(64, 32), (224, 8)]  # (image side, batch)
MODES = ["forward", "gradient_x_input", "thesis", "thesis+layer", "epsilon"]
INNER_LAYER = "9"  # the fourth conv's output
CLASSES = 10


def vgg_style(seed: int = 0) -> nn.Sequential:
    """Four conv blocks (conv3x3-ReLU-maxpool) of 32/64/128/128 channels and two dense layers."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    channels = 3
    for width in (32, 64, 128, 128):
        layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        channels = width
    layers += [
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(128 * 16, 256),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(256, CLASSES),
    ]
    return nn.Sequential(*layers).eval()


def run_mode(mode: str, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> None:
    if mode == "forward":
        with torch.no_grad():
            model(x)
    elif mode == "gradient_x_input":
        x = x.detach().requires_grad_(True)
        logits = model(x)
        (gradient,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), x)
        (gradient * x).detach()
    elif mode == "thesis+layer":
        attribute_layers(model, x, target, [INNER_LAYER], "thesis")
    else:
        attribute(model, x, target, mode)


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_modes(model, x, target, repeats: int) -> dict[str, tuple[float, float, float, float]]:
    """Median CPU and wall seconds and fastest CPU and wall seconds per image of each mode
    after one warm-up.

    The modes take turns within each repeat, so that load from other processes on a shared
    machine affects them alike. The fastest run is the least disturbed one: on a machine
    another job keeps busy, modes made of many small ops lose more to waiting threads.
    """
    samples: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
    for mode in MODES:
        run_mode(mode, model, x, target)
    for _ in range(repeats):
        for mode in MODES:
            _synchronise(x.device)
            c0, w0 = time.process_time(), time.perf_counter()
            run_mode(mode, model, x, target)
            _synchronise(x.device)
            samples[mode].append((time.process_time() - c0, time.perf_counter() - w0))
    return {
        mode: (
            statistics.median(c for c, _ in runs) / len(x),
            statistics.median(w for _, w in runs) / len(x),
            min(c for c, _ in runs) / len(x),
            min(w for _, w in runs) / len(x),
        )
        for mode, runs in samples.items()
    }


def _inputs(side: int, batch: int, device: torch.device):
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 3, side, side, generator=generator).to(device)
    target = torch.randint(CLASSES, (batch,), generator=generator).to(device)
    return x, target


def peak_memory_mb(mode: str, side: int, batch: int, device: str, threads: int) -> float:
    """Peak memory of one measurement: max RSS of a fresh process (CPU) or CUDA allocator peak."""
    command = [
        sys.executable,
        __file__,
        "--measure-memory",
        mode,
        str(side),
        str(batch),
        "--device",
        device,
        "--threads",
        str(threads),
    ]
    return float(subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip())


def _measure_memory(mode: str, side: int, batch: int, device: torch.device) -> float:
    model = vgg_style().to(device)
    x, target = _inputs(side, batch, device)
    run_mode(mode, model, x, target)
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return _resident_high_water_mark_mb()


def _resident_high_water_mark_mb() -> float:
    """VmHWM of this process. Not ru_maxrss: Linux carries the parent's peak across exec."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument(
        "--threads",
        type=int,
        default=torch.get_num_threads(),
        help="torch threads for every measurement (default: torch's default)",
    )
    parser.add_argument("--repeats", type=int, default=9, help="timed runs per measurement (default 9)")
    parser.add_argument("--measure-memory", nargs=3, metavar=("MODE", "SIDE", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.measure_memory:
        mode, side, batch = args.measure_memory
        print(_measure_memory(mode, int(side), int(batch), device))
        return

    model = vgg_style().to(device)
    print(
        f"torch {torch.__version__}, device {device}, threads {args.threads}, "
        f"median of {args.repeats} runs; ratios are to gradient x input (fastest: of the fastest runs)"
    )
    print(
        f"{'input':>12} {'mode':>17} {'cpu ms/img':>11} {'wall ms/img':>12} {'ratio':>6} {'fastest':>8} {'peak MB':>8}"
    )
    for side, batch in CONFIGS:
        x, target = _inputs(side, batch, device)
        times = time_modes(model, x, target, args.repeats)
        key = 1 if device.type == "cuda" else 0  # CUDA work is not process CPU time
        baseline = times["gradient_x_input"][key]
        for mode in MODES:
            memory = peak_memory_mb(mode, side, batch, args.device, args.threads)
            cpu, wall = times[mode][:2]
            fastest = times[mode][2 + key] / times["gradient_x_input"][2 + key]
            print(
                f"{f'{side}x{side} b{batch}':>12} {mode:>17} {cpu * 1e3:11.2f} {wall * 1e3:12.2f} "
                f"{times[mode][key] / baseline:6.2f} {fastest:8.2f} {memory:8.0f}"
            )
        print(
            f"{'':>12} reading layer {INNER_LAYER!r}: thesis+layer / thesis = "
            f"{times['thesis+layer'][key] / times['thesis'][key]:.3f}"
        )


if __name__ == "__main__":
    main()
