"""Block sync from a node that prunes: a GET_BLOCKS below the lowest height it keeps is answered PRUNED with that
height (docs/operations.md, "Pruning"), the blocks it keeps are served as before, and an asker treats PRUNED as
"nothing here" (it turns to another peer)."""

from __future__ import annotations

import msgpack

from node.chain.certified import BLOCK_EVENTS_PREFIX, CERT_PREFIX
from node.net.messages import CH_NODE, Blocks, GetBlocks, Pruned, decode_node_message, encode_node_message
from node.validator.effects import SendTo
from tests.node.validator.test_driver_storage import DevNode, verifier  # noqa: F401 -- the fixture


def _answers(node: DevNode, request: GetBlocks) -> list[object]:
    node.driver.on_message("asker", encode_node_message(request))
    sent = [e for e in node.driver.take() if isinstance(e, SendTo) and e.peer == "asker"]
    return [decode_node_message(e.data[1:]) for e in sent if e.data[0] == CH_NODE]


def test_a_pruned_node_answers_pruned_below_what_it_keeps(tmp_path, verifier) -> None:  # noqa: F811
    node = DevNode(str(tmp_path), True, verifier)
    try:
        node.driver.start()
        node.run_until(lambda: node.app.head.height >= 30)
        report = node.store.prune_blocks(20, (CERT_PREFIX, BLOCK_EVENTS_PREFIX))
        assert report.blocks == 20 and node.store.base_height() == 20
        assert _answers(node, GetBlocks(7, 1, 10)) == [Pruned(7, 20)]
        [served] = _answers(node, GetBlocks(8, 20, 5))
        assert isinstance(served, Blocks) and len(served.items) == 5
        # A PRUNED nobody asked for is counted and dropped like any unsolicited answer.
        node.driver.on_message("asker", encode_node_message(Pruned(99, 20)))
        assert node.driver.mode == "consensus" and not node.driver.take()
        assert decode_node_message(encode_node_message(Pruned(9, 20))[1:]) == Pruned(9, 20)
        assert msgpack.unpackb(encode_node_message(Pruned(9, 20))[1:]) == [4, 9, 20]
    finally:
        node.close()
