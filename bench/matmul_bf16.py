"""What bfloat16 buys on this CPU: a large matmul and a Linear in float32 vs bf16 (not a test).

    python bench/matmul_bf16.py [--threads 2] [--repeats 20]

Prints the CPU's bf16-related instruction-set flags (/proc/cpuinfo), torch's CPU capability, then
the median time and GFLOP/s of

* a 15360×512 @ 512×512 matmul (the imagination batch of B·T·H = 16·64·15 states through a 512-unit
  layer) with float32 inputs and with bfloat16 inputs;
* a 1024×512 → 1536 ``nn.Linear`` (a GRU input projection over the 16×64 posterior states) in
  float32 and under ``torch.autocast("cpu", torch.bfloat16)``, forward only and forward + backward.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from learner_workload import load_average, machine, set_threads

BF16_FLAGS = ("avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_tile", "avx2", "fma")


def cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up (oneDNN primitive creation, weight reorders)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    set_threads(args.threads)
    flags = cpu_flags()
    print(f"# {machine()}, torch {torch.__version__}, {args.threads} threads, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"oneDNN bf16 supported {torch.ops.mkldnn._is_mkldnn_bf16_supported()}, load average {load_average()}")
    print("# flags: " + ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in BF16_FLAGS))

    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(15360, 512, generator=gen), torch.randn(512, 512, generator=gen)
    flop = 2 * 15360 * 512 * 512
    print(f"\n{'case':<58}{'median ms':>10}{'GFLOP/s':>9}{'vs fp32':>9}")
    base = None
    for name, (x, y) in (("matmul 15360x512 @ 512x512, float32", (a, b)),
                         ("matmul 15360x512 @ 512x512, bfloat16 inputs", (a.bfloat16(), b.bfloat16()))):
        t = median_seconds(lambda x=x, y=y: x @ y, args.repeats)
        base = base or t
        print(f"{name:<58}{t * 1e3:>10.2f}{flop / t / 1e9:>9.0f}{base / t:>8.2f}x")

    linear = torch.nn.Linear(512, 1536)
    x = torch.randn(1024, 512, generator=gen, requires_grad=True)
    flop = 2 * 1024 * 512 * 1536

    def forward(bf16: bool):
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            return linear(x)

    def forward_backward(bf16: bool):
        forward(bf16).float().sum().backward()

    for label, fn, work in (("forward", forward, flop), ("forward + backward", forward_backward, 3 * flop)):
        base = None
        for bf16 in (False, True):
            t = median_seconds(lambda fn=fn, bf16=bf16: fn(bf16), args.repeats)
            base = base or t
            name = f"Linear 1024x512->1536 {label}, {'bf16 autocast' if bf16 else 'float32'}"
            print(f"{name:<58}{t * 1e3:>10.2f}{work / t / 1e9:>9.0f}{base / t:>8.2f}x")


if __name__ == "__main__":
    main()
