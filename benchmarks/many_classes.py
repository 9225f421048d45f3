"""ImageNet-shaped runs: 1000 classes x 64 images through `spray run --class all`, then again.

The benchmark makes its own workload: an image folder of CLASSES classes, each a variant of one
of the demo world's seven objects (its own world seed, so backgrounds, colours, sizes and poses
differ per class), images downscaled to a longest side of 72 px (the demo model's input comes
from that), and the demo-sized CNN with one output per class (seeded random weights: the cost
does not depend on what the weights learnt). Everything is written under --work (kept, so a
rerun of the benchmark reuses the images).

It runs `spray run --class all` in a fresh process twice (first run, then the incremental
rerun) and prints per stage the wall and CPU seconds, the peak RSS of the whole process tree,
the store's and the reports' sizes; then the speed-up of 2 local workers over 1 on the first
--speedup-classes classes (compute and analysis, fresh stores, same run). Goals (issue 16, this
2-core machine): first run <= 30 min wall, second <= 2 min, reports <= 500 MB, peak RSS <= 4 GB,
2 workers >= 1.6x one.

    flock /tmp/spray-heavy.lock .venv/bin/python benchmarks/many_classes.py            # full size
    .venv/bin/python benchmarks/many_classes.py --classes 40 --per-class 16 --work /tmp/mc-quick
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
from PIL import Image

HERE = Path(__file__).resolve().parent
FACTORY = """
import torch
from spray.demo.model import demo_network

def build():
    torch.manual_seed(0)
    return demo_network({n_classes}, 64, [16, 32, 64, 64], 128, 0.3).eval()
"""


def render_class(args: tuple[Path, int, int]) -> None:
    """Write the images of class ``index`` (a variant of a demo object, its own world seed)."""
    from spray.demo.world import CLASSES, render

    root, index, per_class = args
    folder = root / f"c{index:04d}_{CLASSES[index % len(CLASSES)]}"
    if folder.is_dir() and len(list(folder.glob("*.jpg"))) == per_class:
        return
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(per_class):
        image, _ = render(1000 + index // len(CLASSES), "test", CLASSES[index % len(CLASSES)], i)
        picture = Image.fromarray(image)
        picture.thumbnail((72, 72), Image.BILINEAR)
        picture.save(folder / f"{i:03d}.jpg", quality=90)


def make_workload(work: Path, n_classes: int, per_class: int) -> tuple[Path, Path, Path]:
    """The image folder, the model factory file and its class names file (made once, reused)."""
    images = work / f"images-{n_classes}x{per_class}"
    with multiprocessing.Pool(max(1, os.cpu_count() or 1)) as pool:
        pool.map(render_class, [(images, i, per_class) for i in range(n_classes)], chunksize=8)
    factory = work / f"model_{n_classes}.py"
    factory.write_text(FACTORY.format(n_classes=n_classes))
    names = work / f"classes_{n_classes}.txt"  # every output named, also when a subset of folders is run
    names.write_text("\n".join(sorted(p.name for p in images.iterdir() if p.is_dir())))
    return images, factory, names


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


class PeakRss:
    """Peak resident memory of a process and all its children (sampled every 0.2 s), and how it
    split at that moment between the spray process itself (client, in-process scheduler) and the rest
    (worker processes)."""

    def __init__(self, pid: int) -> None:
        self.process, self.peak, self.client_at_peak, self._stop = psutil.Process(pid), 0, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            try:
                tree = [self.process, *self.process.children(recursive=True)]
                sizes = {p.pid: p.memory_info().rss for p in tree if p.is_running()}
            except psutil.Error:
                continue
            if sum(sizes.values()) > self.peak:
                self.peak, self.client_at_peak = sum(sizes.values()), sizes.get(self.process.pid, 0)

    def stop(self) -> tuple[int, int]:
        self._stop.set()
        self._thread.join()
        return self.peak, self.client_at_peak


def spray_run(images: Path, factory: Path, names: Path, store: Path, reports: Path, *extra: str) -> dict:
    """One `spray run --class all` in a fresh process: wall, CPU (children included), peak RSS, stages."""
    command = [
        str(Path(sys.executable).parent / "spray"),
        "run",
        "--class",
        "all",
        "--data",
        str(images),
        "--model",
        f"{factory}:build",
        "--class-names",
        str(names),
        "--resize-to",
        "72",
        "--input-size",
        "64",
        "--store",
        str(store),
        "--reports",
        str(reports),
        *extra,
    ]
    started, cpu_before = time.perf_counter(), os.times()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = PeakRss(process.pid)
    output, _ = process.communicate()
    wall, cpu_after = time.perf_counter() - started, os.times()
    rss, client_rss = peak.stop()
    if process.returncode != 0:
        raise SystemExit(f"spray run failed ({process.returncode}):\n{output[-2000:]}")
    timing = next(line for line in output.splitlines() if line.startswith("time:"))
    stages = dict(re.findall(r"(\w+) ([\d.]+)s", timing))
    cpu = (cpu_after.children_user + cpu_after.children_system) - (
        cpu_before.children_user + cpu_before.children_system
    )
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_gb": rss / 2**30,
        "client_rss_at_peak_gb": client_rss / 2**30,
        "stages_s": {k: float(v) for k, v in stages.items()},
        "store_mb": folder_bytes(store) / 2**20,
        "reports_mb": folder_bytes(reports) / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--per-class", type=int, default=64)
    parser.add_argument("--speedup-classes", type=int, default=100, help="classes of the 1- vs 2-worker comparison")
    parser.add_argument("--work", type=Path, default=Path("/tmp/spray-many-classes"))
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    images, factory, names = make_workload(args.work, args.classes, args.per_class)
    print(
        f"workload: {args.classes} classes x {args.per_class} images in {images} "
        f"({folder_bytes(images) / 2**20:.0f} MB, made or checked in {time.perf_counter() - started:.0f} s)"
    )
    run_dir = args.work / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    first = spray_run(images, factory, names, run_dir / "store.zarr", run_dir / "reports")
    second = spray_run(images, factory, names, run_dir / "store.zarr", run_dir / "reports")

    subset = args.work / f"images-{args.speedup_classes}-subset"
    if not subset.is_dir():
        subset.mkdir()
        for folder in sorted(images.iterdir())[: args.speedup_classes]:
            (subset / folder.name).symlink_to(folder, target_is_directory=True)
    speed = {}
    for workers in (1, 2):
        folder = args.work / f"speedup-{workers}"
        shutil.rmtree(folder, ignore_errors=True)
        speed[workers] = spray_run(
            subset, factory, names, folder / "store.zarr", folder / "reports", "--workers", str(workers)
        )
    ratio = (speed[1]["stages_s"]["compute"] + speed[1]["stages_s"]["analyse"]) / (
        speed[2]["stages_s"]["compute"] + speed[2]["stages_s"]["analyse"]
    )

    print(
        f"\n{'run':<14}{'wall s':>9}{'CPU s':>9}{'compute':>9}{'analyse':>9}{'report':>9}{'RSS GB':>8}{'client':>8}"
        f"{'store MB':>10}{'reports MB':>11}"
    )
    for name, figures in (("first", first), ("second", second), ("1 worker", speed[1]), ("2 workers", speed[2])):
        stages = figures["stages_s"]
        print(
            f"{name:<14}{figures['wall_s']:>9.0f}{figures['cpu_s']:>9.0f}{stages.get('compute', 0):>9.1f}"
            f"{stages.get('analyse', 0):>9.1f}{stages.get('report', 0):>9.1f}{figures['peak_rss_gb']:>8.2f}"
            f"{figures['client_rss_at_peak_gb']:>8.2f}"
            f"{figures['store_mb']:>10.0f}{figures['reports_mb']:>11.0f}"
        )
    goals = [
        ("first run <= 30 min", first["wall_s"] <= 1800, f"{first['wall_s'] / 60:.1f} min"),
        ("second run <= 2 min", second["wall_s"] <= 120, f"{second['wall_s']:.0f} s"),
        ("reports <= 500 MB", first["reports_mb"] <= 500, f"{first['reports_mb']:.0f} MB"),
        ("peak RSS <= 4 GB", max(first["peak_rss_gb"], second["peak_rss_gb"]) <= 4, f"{first['peak_rss_gb']:.2f} GB"),
        ("2 workers >= 1.6x one", ratio >= 1.6, f"{ratio:.2f}x (compute + analysis, {args.speedup_classes} classes)"),
    ]
    print()
    for goal, met, measured in goals:
        print(f"{'met ' if met else 'MISS'} {goal:<24} {measured}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "first": first,
                    "second": second,
                    "workers": speed,
                    "ratio": ratio,
                    "classes": args.classes,
                    "per_class": args.per_class,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
