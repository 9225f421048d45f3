"""GPU throughput: relevance maps per second at 224x224 (issue 12 item 5, issue 18 item 1).

For a VGG-16-shaped and a ResNet-50-shaped network (defined here, random weights, float32,
1000 classes) and batch sizes 32, 64, 128, 256, times in one process: forward only (no
gradient), gradient x input, spray's "thesis" composite (``attribute``) and the thesis
composite also reading an inner layer (``attribute_layers``; VGG ``features.28``, ResNet
``layer4``). A batch that runs out of memory stops that mode's growth on that network.
Ratios are to gradient x input at the same batch, measured in the same run. Goals: thesis
<= 2.5x gradient x input (issue 12), thesis+layer <= 1.1x thesis (issue 18).

Made for one short run on a lent GPU: ``--quick`` times 2 runs after a warm-up instead of 5,
``--time-cap`` (default 240 s) stops starting new measurements, every finished measurement
is printed at once and the JSON is rewritten after each, so a run cut short keeps what it
measured. TF32 is left at torch's defaults (what ``spray compute`` runs with) and recorded;
``--no-tf32`` switches it off.

    .venv/bin/python benchmarks/gpu_throughput.py --device cuda --quick --json gpu_throughput.json
    .venv/bin/python benchmarks/gpu_throughput.py --device cpu --size 32 --batches 2 4 --quick  # smoke run
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from spray.lrp import attribute, attribute_layers

MODES = ["forward", "gradient_x_input", "thesis", "thesis+layer"]
CLASSES = 1000


# ---- the networks (torchvision's shapes; torchvision is not a dependency) --------------------


def vgg16() -> nn.Module:
    """VGG-16: 13 3x3 convs in 5 max-pooled blocks, 7x7 average pool, three dense layers."""
    widths = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    layers: list[nn.Module] = []
    channels = 3
    for width in widths:
        if width == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
            channels = width
    classifier = nn.Sequential(
        nn.Linear(512 * 7 * 7, 4096),
        nn.ReLU(True),
        nn.Dropout(),
        nn.Linear(4096, 4096),
        nn.ReLU(True),
        nn.Dropout(),
        nn.Linear(4096, CLASSES),
    )
    return nn.Sequential(nn.Sequential(*layers), nn.AdaptiveAvgPool2d(7), nn.Flatten(1), classifier)


class Bottleneck(nn.Module):
    """ResNet-50's bottleneck: 1x1 reduce, 3x3 (stride), 1x1 expand x4, BatchNorm, residual."""

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * 4
        self.conv1, self.bn1 = nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += identity
        return self.relu(out)


class ResNet50(nn.Module):
    """ResNet-50: 7x7/2 stem, 3x3/2 max pool, 3-4-6-3 bottlenecks, average pool, dense head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages, cin = [], 64
        for width, blocks, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
            stage = []
            for i in range(blocks):
                stage.append(Bottleneck(cin, width, stride if i == 0 else 1))
                cin = width * 4
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2048, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


NETWORKS = {"vgg16": (vgg16, "0.28"), "resnet50": (ResNet50, "layer4")}  # (factory, inner layer)


def _with_statistics(model: nn.Module) -> nn.Module:
    """Non-trivial BatchNorm statistics, as a trained network has."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
    return model.eval()


# ---- measuring ---------------------------------------------------------------------------


def run_mode(mode: str, model: nn.Module, x: torch.Tensor, target: torch.Tensor, layer: str) -> None:
    if mode == "forward":
        with torch.no_grad():
            model(x)
    elif mode == "gradient_x_input":
        x = x.detach().requires_grad_(True)
        logits = model(x)
        (gradient,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), x)
        (gradient * x).detach()
    elif mode == "thesis":
        attribute(model, x, target, "thesis")
    else:
        attribute_layers(model, x, target, [layer], "thesis")


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(mode: str, model: nn.Module, x, target, layer: str, repeats: int) -> dict:
    """Median seconds per batch over ``repeats`` runs after one warm-up, and peak memory."""
    device = x.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    run_mode(mode, model, x, target, layer)
    _synchronise(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_mode(mode, model, x, target, layer)
        _synchronise(device)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {"seconds_per_batch": seconds, "maps_per_second": len(x) / seconds, "peak_memory_mb": peak}


def _is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in str(error).lower()


def _free(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


# ---- end to end: `spray compute` against the plain loop it wraps ----------------------------


def e2e_resnet50() -> nn.Module:
    """The factory ``spray compute`` loads in the end-to-end measurement (seeded, with statistics)."""
    torch.manual_seed(0)
    return _with_statistics(ResNet50())


def _e2e_workload(folder: Path, n_images: int) -> tuple[Path, Path]:
    """Two classes of seeded 300x260 / 260x300 noise photos, and 1000 class names (the first two
    name the folders), as a user's ImageNet-style folder would be."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (folder / "images" / name).mkdir(parents=True, exist_ok=True)
        for i in range(n_images // 2):
            size = (300, 260) if i % 2 else (260, 300)
            Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(
                folder / "images" / name / f"{i}.jpg"
            )
    names = folder / "classes.txt"
    names.write_text("\n".join(["a", "b", *(f"c{i}" for i in range(2, CLASSES))]))
    return folder / "images", names


def end_to_end(args: argparse.Namespace, seconds_left: float) -> dict | None:
    """End-to-end ``spray compute`` maps/s against the plain loop it wraps (issue 12 goal: >= 70%).

    Both compute the same thesis-composite maps of the same images with the ResNet-50-shaped
    model on ``args.device`` at ``--e2e-batch``: the plain loop reads, preprocesses (the
    ``torchvision`` preset), explains and sums channels; ``spray compute`` also writes the store
    (full and pooled maps, thumbnails, checksums). The compute is timed on a second, forced run
    (the first loads the model and warms up), in this process (one GPU: no cluster).
    """
    import tempfile

    import numpy as np

    from spray.data import open_source
    from spray.preprocess import PRESETS
    from workflows.cluster import local_threads
    from workflows.compute import compute_classes
    from workflows.process_settings import relevance_compute

    if seconds_left < 30:
        return None
    folder = Path(tempfile.mkdtemp(prefix="spray-gpu-e2e-"))
    images, names = _e2e_workload(folder, args.e2e_images)
    source, prep = open_source(str(images)), PRESETS["torchvision"]
    model = e2e_resnet50().to(args.device)
    ids = source.ids("all", "a") + source.ids("all", "b")
    targets = [0] * (len(ids) // 2) + [1] * (len(ids) - len(ids) // 2)

    def plain_loop() -> float:
        started = time.perf_counter()
        for start in range(0, len(ids), args.e2e_batch):
            batch = ids[start : start + args.e2e_batch]
            x = torch.from_numpy(np.stack([prep(source.load(i).image, i) for i in batch])).to(args.device)
            relevance, _ = attribute(model, x, torch.tensor(targets[start : start + len(batch)], device=args.device))
            relevance.sum(dim=1).cpu().numpy()
        _synchronise(torch.device(args.device))
        return len(ids) / (time.perf_counter() - started)

    options = {
        "model_spec": {
            "model": f"{Path(__file__).resolve()}:e2e_resnet50",
            "classes": str(names),
            "preprocessing": {"preset": "torchvision"},
        },
        "source_spec": str(images),
        "split": None,
        "device": args.device,
        "batch_size": args.e2e_batch,
        "workers": 1,
        "progress": False,
    }
    with relevance_compute(local_threads(1)):  # the thread and allocator settings spray's tasks run under
        plain_loop()  # warm-up (cuDNN autotuning, allocator)
        plain = plain_loop()
    compute_classes(folder / "store.zarr", ["a", "b"], **options)  # loads and warms the model
    started = time.perf_counter()
    results = compute_classes(folder / "store.zarr", ["a", "b"], force=True, **options)
    spray = sum(r.n_computed for r in results) / (time.perf_counter() - started)
    return {
        "images": len(ids),
        "batch": args.e2e_batch,
        "plain_loop_maps_per_second": plain,
        "spray_compute_maps_per_second": spray,
        "ratio": spray / plain,
    }


# ---- the run -----------------------------------------------------------------------------


def _row(result: dict) -> str:
    speed = "" if result.get("maps_per_second") is None else f"{result['maps_per_second']:10.1f}"
    ratio = "" if result.get("ratio") is None else f"{result['ratio']:6.2f}"
    memory = "" if result.get("peak_memory_mb") is None else f"{result['peak_memory_mb']:9.0f}"
    return (
        f"{result['network']:>9} {result['batch']:>6} {result['mode']:>17} {speed:>10} {ratio:>6} "
        f"{memory:>9}  {result['status']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=224, help="image side (default 224)")
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--networks", nargs="+", choices=list(NETWORKS), default=list(NETWORKS))
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (default 5)")
    parser.add_argument("--quick", action="store_true", help="2 timed runs per measurement")
    parser.add_argument(
        "--time-cap", type=float, default=240.0, help="seconds after which no new measurement starts (default 240)"
    )
    parser.add_argument("--no-tf32", action="store_true", help="full float32 convolutions and matmuls")
    parser.add_argument("--json", type=Path, default=Path("gpu_throughput.json"), help="where the results go")
    parser.add_argument("--e2e-images", type=int, default=512, help="images of the end-to-end measurement")
    parser.add_argument("--e2e-batch", type=int, default=64, help="batch of the end-to-end measurement")
    args = parser.parse_args()
    started = time.perf_counter()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but torch sees no CUDA device; pass --device cpu")
    if args.no_tf32:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    repeats = 2 if args.quick else args.repeats
    report = {
        "environment": {
            "torch": torch.__version__,
            "device": str(device),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "tf32_convolutions": torch.backends.cudnn.allow_tf32,
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
            "threads": torch.get_num_threads(),
            "size": args.size,
            "batches": args.batches,
            "repeats": repeats,
            "dtype": "float32",
        },
        "results": [],
        "end_to_end": None,
    }

    def save() -> None:
        report["elapsed_s"] = time.perf_counter() - started
        args.json.write_text(json.dumps(report, indent=1))

    print(
        f"torch {torch.__version__}, {report['environment']['gpu'] or device}, {args.size}x{args.size}, "
        f"float32 (TF32 conv {torch.backends.cudnn.allow_tf32}), median of {repeats}; ratio to gradient x input",
        flush=True,
    )
    print(f"{'network':>9} {'batch':>6} {'mode':>17} {'maps/s':>10} {'ratio':>6} {'peak MB':>9}  status", flush=True)
    for name in args.networks:
        factory, layer = NETWORKS[name]
        torch.manual_seed(0)
        model = _with_statistics(factory()).to(device)
        stopped: set[str] = set()  # modes that ran out of memory at a smaller batch
        for batch in sorted(args.batches):
            generator = torch.Generator(device=device).manual_seed(batch)
            x = torch.randn(batch, 3, args.size, args.size, generator=generator, device=device)
            target = torch.randint(CLASSES, (batch,), generator=generator, device=device)
            rows = []
            for mode in MODES:
                result = {"network": name, "batch": batch, "mode": mode}
                if mode in stopped:
                    result["status"] = "skipped: out of memory at a smaller batch"
                elif time.perf_counter() - started > args.time_cap:
                    result["status"] = "skipped: time cap"
                else:
                    try:
                        result.update(measure(mode, model, x, target, layer, repeats), status="ok")
                    except Exception as error:  # keep going: a partial table is still a result
                        oom = _is_out_of_memory(error)
                        if oom:
                            stopped.add(mode)
                        result["status"] = "out of memory" if oom else f"error: {type(error).__name__}: {error}"
                    finally:
                        _free(device)
                rows.append(result)
                report["results"].append(result)
                save()
            baseline = next(
                (r["seconds_per_batch"] for r in rows if r["mode"] == "gradient_x_input" and r["status"] == "ok"), None
            )
            for result in rows:
                if result["status"] == "ok" and baseline is not None:
                    result["ratio"] = result["seconds_per_batch"] / baseline
                print(_row(result), flush=True)
            save()
            del x, target
        del model
        _free(device)

    report["end_to_end"] = end_to_end(args, args.time_cap - (time.perf_counter() - started))
    if report["end_to_end"] is not None:
        print(f"end to end: {report['end_to_end']}", flush=True)
    for name in args.networks:
        for batch in sorted(args.batches):
            rows = {
                r["mode"]: r
                for r in report["results"]
                if r["network"] == name and r["batch"] == batch and r["status"] == "ok"
            }
            if "thesis" in rows and "thesis+layer" in rows:
                ratio = rows["thesis+layer"]["seconds_per_batch"] / rows["thesis"]["seconds_per_batch"]
                print(f"{name} b{batch}: thesis+layer / thesis = {ratio:.3f}", flush=True)
    save()
    print(f"wrote {args.json} ({time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
