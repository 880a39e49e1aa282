"""The node: the only layer with I/O, in rooms that draw the path of a transaction (docs/node.md): chain/ (the
Application: mempool, execution, commits, epochs, feed), validator/ (the driver of the replica and its asyncio host),
net/ (transport), api/ (HTTP), client/ (SDK), tools/ (testnet, demo, chaos, load, simulation), cli/ (`ledger`).

Importing it registers nothing. What a node executes and decodes — the operation set (the ledger's core kinds and
the contracts layer's), the rule engine, the BLS proof-of-possession check — and which BLS backend it uses are
composed in one place, node/chain/protocol.py, and passed explicitly to every entry point (mempool admission, block
execution, genesis, the API, the commit feed, the client SDK, the CLI and tools), so every node process decodes,
encodes and executes exactly the same operation set.
"""
