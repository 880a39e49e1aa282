"""The chain every simulated run starts from: keys, genesis and test accounts, generated once per process.

Keys are the same for every seed (as in the consensus simulator), so BLS proofs of possession are checked once; the
seed draws the faults, the timing and the workload. The genesis has `nodes` validators (node-0 ..), members m0 ..,
governors gov@m0 .. (M of N approvals), users user-0@m0 .. holding CASH-T, the admin account (issuer, custodian,
notary), and `spare` nodes outside the genesis set that governance may add (node-<nodes> ..). Every node also has
next keys ready (what `ledger keys rotate` writes beside its key file), so a rotation can be proposed for any node.
"""

from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass
from typing import Final

from nacl.signing import SigningKey

from node.chain.genesis import ChainParams, Genesis, load_genesis
from node.tools.localnet import ADMIN_ACCOUNT, CASH_ASSET, generate_network, load_accounts
from node.validator.keyfile import NodeKeys, load_keys, rotate_keys

__all__ = ["ADMIN_ACCOUNT", "CASH_ASSET", "SIM_PARAMS", "World", "world"]

# Small timeouts keep a run short in virtual time; the drift bound makes clock skew matter.
SIM_PARAMS: Final = ChainParams(max_block_txs=200, max_block_bytes=400_000, base_timeout_ms=400,
                                max_backoff_exponent=4, max_clock_drift_ms=1_000, empty_block_interval_ms=100)
GENESIS_TIME: Final = 1_750_000_000
USERS: Final = 8
KEY_SEED: Final = b"node simulator"


@dataclass(frozen=True, slots=True)
class World:
    genesis: Genesis
    keys: tuple[NodeKeys, ...]  # node-0 .. node-<nodes + spare - 1>
    next_keys: tuple[NodeKeys, ...]  # each node's rotated keys
    accounts: dict[str, SigningKey]
    nodes: int
    spare: int

    @property
    def users(self) -> list[str]:
        return sorted(a for a in self.accounts if a.startswith("user-"))

    @property
    def governors(self) -> list[str]:
        return sorted(a for a in self.accounts if a.startswith("gov@"))


@functools.lru_cache(maxsize=8)
def world(nodes: int, spare: int) -> World:
    directory = tempfile.mkdtemp(prefix="ledger-sim-world-")
    layout = generate_network(directory, nodes, chain_id="sim-node", seed=KEY_SEED, params=SIM_PARAMS,
                              genesis_time=GENESIS_TIME, users=USERS, governors=True, spare_nodes=spare)
    paths = [os.path.join(os.path.dirname(p), "node_keys.json")
             for p in layout.config_paths + layout.spare_config_paths]
    keys = tuple(load_keys(p) for p in paths)
    next_keys = tuple(rotate_keys(k, KEY_SEED + b"|next|" + k.node_id.encode()) for k in keys)
    return World(load_genesis(layout.genesis_path), keys, next_keys, load_accounts(layout.accounts_path), nodes,
                 spare)
