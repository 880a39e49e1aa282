"""BLS timings for both backends of consensus/bls.py; prints one JSON object and the command that reproduces it.

    .venv/bin/python benchmarks/bls_bench.py                      # both backends, default iteration counts
    .venv/bin/python benchmarks/bls_bench.py --backends blspy --iterations 200
    .venv/bin/python benchmarks/bls_bench.py --ref-iterations 1 --sizes 4,16

Every number is the median wall-clock time of one call in milliseconds over the given iterations (after one warm-up
call).  blspy runs `--iterations` times per operation, py_ecc (pure Python, ~1000x slower) `--ref-iterations` times.
Signatures and keys are built once with blspy (identical bytes on both backends), so py_ecc timings only measure the
operation itself.  Verification timings use keys already seen once, i.e. with the public-key cache warm, which is
the steady state for a validator set.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consensus import bls

MESSAGE = b"bench vote: chain=bench epoch=1 round=1 block=00 state=00"


def median_ms(call: Callable[[], object], iterations: int) -> float:
    call()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return round(statistics.median(samples) * 1000.0, 4)


def bench_backend(backend: bls.BlsBackend, iterations: int, sizes: list[int]) -> dict[str, float]:
    fast = bls.get_backend("blspy") if "blspy" in bls.available_backends() else backend
    largest = max(sizes)
    sks = [fast.keygen(i.to_bytes(4, "big") * 8) for i in range(largest)]
    pks = [fast.public_key(sk) for sk in sks]
    sigs = [fast.sign(sk, MESSAGE) for sk in sks]
    proof = fast.pop_prove(sks[0])
    assert backend.verify(pks[0], MESSAGE, sigs[0])

    out: dict[str, float] = {}
    out["keygen_ms"] = median_ms(lambda: backend.keygen(b"\x07" * 32), iterations)
    out["public_key_ms"] = median_ms(lambda: backend.public_key(sks[0]), iterations)
    out["sign_ms"] = median_ms(lambda: backend.sign(sks[0], MESSAGE), iterations)
    out["verify_ms"] = median_ms(lambda: backend.verify(pks[0], MESSAGE, sigs[0]), iterations)
    out["pop_prove_ms"] = median_ms(lambda: backend.pop_prove(sks[0]), iterations)
    out["pop_verify_ms"] = median_ms(lambda: backend.pop_verify(pks[0], proof), iterations)
    for n in sizes:
        agg = fast.aggregate(sigs[:n])
        assert backend.fast_aggregate_verify(pks[:n], MESSAGE, agg)
        out[f"aggregate_{n}_ms"] = median_ms(lambda n=n: backend.aggregate(sigs[:n]), iterations)
        out[f"fast_aggregate_verify_{n}_ms"] = median_ms(
            lambda n=n, agg=agg: backend.fast_aggregate_verify(pks[:n], MESSAGE, agg), iterations
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(bls.available_backends()), help="comma-separated names")
    parser.add_argument("--iterations", type=int, default=100, help="calls per operation for blspy")
    parser.add_argument("--ref-iterations", type=int, default=3, help="calls per operation for py_ecc")
    parser.add_argument("--sizes", default="4,16,64", help="aggregate sizes, comma-separated")
    cli = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(cli)
    names = [name for name in args.backends.split(",") if name]
    sizes = [int(size) for size in args.sizes.split(",") if size]
    if not names or not sizes or min(sizes) < 1 or args.iterations < 1 or args.ref_iterations < 1:
        parser.error("need at least one backend, sizes >= 1 and iterations >= 1")

    results: dict[str, object] = {}
    started = time.perf_counter()
    for name in names:
        backend = bls.get_backend(name)
        iterations = args.ref_iterations if name == "py_ecc" else args.iterations
        results[name] = {"iterations": iterations, **bench_backend(backend, iterations, sizes)}
    report = {
        "benchmark": "bls",
        "ciphersuite": bls.SIGNATURE_CIPHERSUITE.decode(),
        "unit": "milliseconds per call, median",
        "results": results,
        "seconds": round(time.perf_counter() - started, 2),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "command": " ".join(shlex.quote(part) for part in [".venv/bin/python", "benchmarks/bls_bench.py", *cli]),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
