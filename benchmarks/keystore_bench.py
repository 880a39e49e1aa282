"""Cost of opening a sealed key file at each Argon2id level `ledger` offers (node/client/keystore.py); prints one
JSON object and the command that reproduces it.

    .venv/bin/python benchmarks/keystore_bench.py                    # interactive, moderate, sensitive; 3 runs each
    .venv/bin/python benchmarks/keystore_bench.py --levels moderate --runs 5

Each number is the median wall-clock time in milliseconds of one `unseal` (one Argon2id derivation and one AEAD
decryption of a 64-byte node secret), which is what `ledger node run` pays once at start. `seal` costs the same.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.client.keystore import COST_LEVELS, KdfCost, seal, unseal


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default=",".join(COST_LEVELS))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    header = {"format": "bench", "owner": "bench"}
    result: dict[str, object] = {}
    for level in args.levels.split(","):
        cost = KdfCost.named(level)
        sealed = seal(os.urandom(64), b"benchmark passphrase", header, cost)
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            unseal(sealed, b"benchmark passphrase", header)
            times.append((time.perf_counter() - start) * 1000)
        result[level] = {
            "opslimit": cost.opslimit,
            "memlimit_mib": cost.memlimit >> 20,
            "unseal_ms_median": round(statistics.median(times), 1),
        }
    result["loadavg_1m"] = round(os.getloadavg()[0], 2)
    result["command"] = " ".join(
        shlex.quote(a) for a in [".venv/bin/python", "benchmarks/keystore_bench.py", *sys.argv[1:]]
    )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
