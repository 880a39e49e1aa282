"""One execution setting against another in one process: `apply_block` on the blocks of `ledger bench apply`.

    python benchmarks/apply_ab_bench.py prepare [--txs 10000] [--reps 4] [--no-verify]
    python benchmarks/apply_ab_bench.py native-decode [--txs 10000] [--reps 4] [--no-verify]
    python benchmarks/apply_ab_bench.py native-encode [--txs 10000] [--reps 4] [--no-verify]
    python benchmarks/apply_ab_bench.py trusted-loader [--txs 10000] [--reps 4] [--no-verify]
    (--accounts 10000 and --block-size 1000 as `ledger bench apply`'s defaults)

(from the repository root, with the project installed). Every block of signed transfers
is applied alternately under setting A and setting B on the same parent (`apply_block` is pure), `--reps` times each,
and the best CPU time (time.process_time) of each is kept; then the block is committed and the next one follows.
Alternating block by block inside one process cancels most of what makes two separate runs on a shared machine
differ; the caches are warm after the first repetition, so the µs are lower than `ledger bench apply`'s (which
applies each block once). Prints one JSON object: µs per transfer under A and B and B/A.

Settings:
- prepare: `ledger.transition.PREPARE_RUN` 1 (decode, verify and execute each transaction in turn) against 256
  (decode and verify runs of 256 ahead, then execute them);
- native-decode: `ledger.codec.NATIVE_DECODE` off (the Python decoder) against on (ledger._codec_native);
- native-encode: `ledger.codec.NATIVE_ENCODE` off (the fast dumpers and msgpack) against on (ledger._codec_native's
  encoder), for the state changes and the receipts;
- trusted-loader: the state overlay's first read of a key through `codec.decode_trusted(type, raw, max)` (called
  through a functools.partial, which adds a little) against `codec.trusted_loader(type, max)` (the same cache,
  without the per-call type lookup).
(The native record makers cannot be switched inside one process: every module binds its constructors at import.)
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Callable

from ledger import codec, state, transition
from ledger.schema import MAX_STATE_VALUE_BYTES
from ledger.state_keys import RECORD_BY_TAG
from ledger.transition import apply_block
from node.cli.bench import build_ledger, make_transfers
from node.validator.collector import freeze_startup_heap, tune_collector



def _native_encode(on: bool) -> None:
    codec.NATIVE_ENCODE = on
    codec._FAST_DUMP.clear()  # trusted_encoder builds its encoders again under the setting
    state._ENCODER_BY_TAG.update({tag: None if rt is None else codec.trusted_encoder(rt) for tag, rt in RECORD_BY_TAG.items()})


def _per_call_loader(rt: codec.Record) -> Callable[[bytes], object]:
    # what Overlay.get called before (decode_trusted(rt, raw, MAX_STATE_VALUE_BYTES)), through a C-level partial so
    # that the A side pays as little as possible for being switchable
    return functools.partial(codec.decode_trusted, rt, max_bytes=MAX_STATE_VALUE_BYTES)


_LOADERS = {
    False: {tag: None if rt is None else _per_call_loader(rt) for tag, rt in RECORD_BY_TAG.items()},
    True: dict(state._LOADER_BY_TAG),
}

SETTINGS: dict[str, tuple[Callable[[], None], Callable[[], None]]] = {
    "prepare": (lambda: setattr(transition, "PREPARE_RUN", 1), lambda: setattr(transition, "PREPARE_RUN", 256)),
    "native-decode": (lambda: setattr(codec, "NATIVE_DECODE", False), lambda: setattr(codec, "NATIVE_DECODE", True)),
    "native-encode": (lambda: _native_encode(False), lambda: _native_encode(True)),
    "trusted-loader": (lambda: state._LOADER_BY_TAG.update(_LOADERS[False]),
                       lambda: state._LOADER_BY_TAG.update(_LOADERS[True])),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("setting", choices=sorted(SETTINGS))
    parser.add_argument("--txs", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=4)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--block-size", type=int, default=1_000)
    parser.add_argument("--no-verify", action="store_true", help="treat every signature as verified already")
    args = parser.parse_args()
    if args.reps < 1 or args.accounts < 2 or not 1 <= args.block_size <= args.txs:
        parser.error("need --reps >= 1, --accounts >= 2 and 1 <= --block-size <= --txs")
    if args.setting in ("native-decode", "native-encode") and not codec.NATIVE_DECODE_AVAILABLE:
        parser.error("ledger._codec_native is not built (pip install -e .)")
    set_a, set_b = SETTINGS[args.setting]
    tune_collector()
    size = args.block_size
    ledger, keys = build_ledger(args.accounts)
    txs = make_transfers(args.txs, args.accounts, keys, ledger.height + args.txs // size + 2, 1)
    freeze_startup_heap()
    verified = (lambda _item: True) if args.no_verify else None
    best_a = best_b = 0.0
    try:
        for lo in range(0, args.txs, size):
            block, context = txs[lo : lo + size], ledger.next_block(ledger.time + 1)
            times: dict[int, list[float]] = {0: [], 1: []}
            for _ in range(args.reps):
                for which, setting in ((0, set_a), (1, set_b)):
                    setting()
                    start = time.process_time()
                    out = apply_block(ledger.state, context, block, tree=ledger.tree, protocol=ledger.protocol,
                                      signatures_verified=verified)
                    times[which].append(time.process_time() - start)
                    assert all(r.code == 0 for r in out.receipts), "a transfer failed"
            best_a += min(times[0])
            best_b += min(times[1])
            ledger.commit(out)
    finally:
        set_b()
    a_us, b_us = best_a / args.txs * 1e6, best_b / args.txs * 1e6
    command = (f"python benchmarks/apply_ab_bench.py {args.setting} --txs {args.txs} --reps {args.reps} "
               f"--accounts {args.accounts} --block-size {size}")
    print(json.dumps({
        "setting": args.setting, "txs": args.txs, "reps": args.reps, "verify": not args.no_verify,
        "a_us_per_tx": round(a_us, 1), "b_us_per_tx": round(b_us, 1), "b_over_a": round(b_us / a_us, 3),
        "state_root": ledger.root.hex(), "command": command + (" --no-verify" if args.no_verify else ""),
    }))


if __name__ == "__main__":
    main()
