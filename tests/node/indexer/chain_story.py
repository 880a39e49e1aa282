"""What the indexer tests put on a testnet besides transfer load: holds through their whole lifecycle (executed,
released, expired by block time, still open), amount freezes, and a governance proposal that starts a new epoch, signed with the testnet's keys and submitted through
the API with wait=commit."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from contracts.operations import AnnounceAction, PayAction
from ledger.operations import CreateHold, DefineAsset, ExecuteHold, FreezeAmount, Issue, ReleaseHold, UnfreezeAmount
from ledger.transaction import TxBody, sign_transaction
from node.chain.protocol import OPERATIONS
from node.client.aio import AsyncLedgerClient
from node.client.keys import load_key
from node.client.proposals import action, approve, propose
from node.tools.localnet import ADMIN_ACCOUNT, CASH_ASSET, load_accounts
from node.tools.testnet import governor_account

_nonce = itertools.count(1 << 50)


async def _submit(client: AsyncLedgerClient, chain_id: str, keys: dict[str, Any], signer: str, *ops: Any) -> None:
    head = await client.head_height()
    body = TxBody(1, chain_id, (signer,), next(_nonce), head + 1000, tuple(ops))
    raw = sign_transaction(body, [(signer, keys[signer])], operations=OPERATIONS).to_bytes()
    await client.submit(raw, wait="commit", timeout=60)


async def change_params(url: str, net: Any, proposal_id: str = "slower-empty-blocks") -> None:
    """Governance: the governors change one chain parameter (empty_block_interval_ms 200 -> 250), which starts a new
    epoch with the same validators: the indexer must follow the epoch-change proof to verify what comes after."""
    async with AsyncLedgerClient(url) as c:
        current = (await c.governance())["params"]
        params = {**current, "empty_block_interval_ms": 250}
        members = [f"m{i}" for i in range(net.n)]
        head = await c.head_height()
        op = propose(
            governor_account(members[0]), proposal_id, [action("set_chain_params", **params)], expiry_height=head + 500
        )
        await c.execute(op, keys=[load_key(net.governor_key_path(members[0]))])
        for member in members[1:]:
            if (await c.proposal(proposal_id))["status"] == "executed":
                break
            await c.execute(
                approve(governor_account(member), proposal_id), keys=[load_key(net.governor_key_path(member))]
            )
        assert (await c.proposal(proposal_id))["status"] == "executed"


async def pay_coupon(url: str, chain_id: str, accounts_path: str) -> None:
    """A corporate action: the admin defines BOND-X, issues it to user-2 and user-3 (1,000 and 3,000), announces coupon
    BOND-X-C1 (1 CASH-T per 10 units held at a record height) and pays it."""
    keys = load_accounts(accounts_path)
    users = sorted(a for a in keys if a.startswith("user-"))
    admin, u2, u3 = ADMIN_ACCOUNT, users[2], users[3]
    async with AsyncLedgerClient(url) as c:
        await _submit(
            c,
            chain_id,
            keys,
            admin,
            DefineAsset(admin, "BOND-X", 2, 10**9, "Bond X", "", (), (), ()),
            Issue(admin, "BOND-X", u2, 1_000),
            Issue(admin, "BOND-X", u3, 3_000),
            Issue(admin, CASH_ASSET, admin, 10_000),
        )
        record = await c.head_height() + 10  # room for the announcement to be included before it
        await _submit(
            c,
            chain_id,
            keys,
            admin,
            AnnounceAction(admin, "BOND-X-C1", 1, "BOND-X", CASH_ASSET, admin, admin, record, 1, 10),
        )
        while await c.head_height() <= record:
            await asyncio.sleep(0.1)
        await _submit(c, chain_id, keys, admin, PayAction(admin, "BOND-X-C1", 64))


async def play_story(url: str, chain_id: str, accounts_path: str) -> dict[str, str]:
    """Holds h-exec (executed), h-rel (released by its notary), h-exp (expires 5 s of block time after its creation,
    released by the block step), h-open (open); 500 units of user-1 frozen, 200 of them unfrozen. Returns hold id -> final status."""
    keys = load_accounts(accounts_path)
    u0, u1, u2, u3 = (f"user-{k}@m{k % 4}" for k in range(4))
    async with AsyncLedgerClient(url) as c:
        far = int((await c.block(await c.head_height()))["time"]) + 86_400
        await _submit(
            c,
            chain_id,
            keys,
            u0,
            CreateHold(u0, "h-exec", CASH_ASSET, u0, u1, u2, 1_000, far),
            CreateHold(u0, "h-rel", CASH_ASSET, u0, u3, u2, 2_000, far),
            CreateHold(u0, "h-open", CASH_ASSET, u0, u1, u2, 3_000, far),
        )
        soon = int((await c.block(await c.head_height()))["time"]) + 5
        await _submit(c, chain_id, keys, u1, CreateHold(u1, "h-exp", CASH_ASSET, u1, u0, u3, 700, soon))
        await _submit(c, chain_id, keys, u2, ExecuteHold(u2, "h-exec"))
        await _submit(c, chain_id, keys, u2, ReleaseHold(u2, "h-rel"))
        await _submit(c, chain_id, keys, ADMIN_ACCOUNT, FreezeAmount(ADMIN_ACCOUNT, CASH_ASSET, u1, 500, "inquiry"))
        await _submit(
            c,
            chain_id,
            keys,
            ADMIN_ACCOUNT,
            UnfreezeAmount(ADMIN_ACCOUNT, CASH_ASSET, u1, 200, "inquiry partly closed"),
        )
        for _ in range(600):  # h-exp is released by the first block whose time reaches its expiry
            hold = await c.hold("h-exp")
            if hold["status_name"] != "ordered":
                break
            await asyncio.sleep(0.2)
    return {"h-exec": "executed", "h-rel": "released", "h-exp": "expired", "h-open": "open"}
