"""`ledger bench consensus`: the payload-only application (certificates checked, durable store, lost proposals given
back), the report's arithmetic and checks, and one tiny real run of validator processes. Numbers are not asserted
(no timing assertions): only that the run accounts for every payload and produces every field."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from consensus.bls import get_backend
from consensus.certificates import CommitCertificateError, SignatureVerifier
from consensus.messages import (
    Block,
    BlockHeader,
    CommitCertificate,
    QuorumCert,
    genesis_block,
    genesis_qc,
    payload_hash,
    vote_message,
)
from consensus.validators import Validator, ValidatorSet
from node.cli import main
from node.tools.bench_consensus import ConsensusBenchReport, percentile_ms, summarise
from node.tools.payload_chain import PayloadChain, PayloadChainError, payload_root

CHAIN = b"bench-test"
BACKEND = get_backend()
SECRETS = [BACKEND.keygen(hashlib.sha256(b"test bench %d" % i).digest()) for i in range(4)]
VS = ValidatorSet(0, [Validator(b"v%d" % i, BACKEND.public_key(sk), BACKEND.pop_prove(sk)) for i, sk in
                      enumerate(SECRETS)], backend=BACKEND)
GENESIS = genesis_block(CHAIN, 0)
GENESIS_QC = genesis_qc(GENESIS, bytes(32))


def payloads(tag: int, count: int) -> list[bytes]:
    return [bytes([tag]) + i.to_bytes(4, "big") + bytes(245) for i in range(count)]


def qc_for(header: BlockHeader, state_root: bytes, signers: range = range(3)) -> QuorumCert:
    msg = vote_message(CHAIN, 0, header.round, header.id, state_root)
    signature = BACKEND.aggregate([BACKEND.sign(SECRETS[i], msg) for i in signers])
    return QuorumCert(0, header.round, header.id, state_root, VS.bitmap(signers), signature)


def child(parent: Block, parent_qc: QuorumCert, round_: int, payload: bytes) -> Block:
    h = parent.header
    return Block(BlockHeader(CHAIN, 0, round_, h.height + 1, parent.id, round_ % 4, payload_hash(payload), parent_qc),
                 payload)


def certified(payload: bytes, *, parent: Block = GENESIS, parent_qc: QuorumCert = GENESIS_QC,
              parent_root: bytes = bytes(32), round_: int = 1) -> tuple[Block, CommitCertificate]:
    """`payload` in a block on `parent`, with the commit certificate of a certified child in the next round."""
    block = child(parent, parent_qc, round_, payload)
    root = payload_root(parent_root, block.header.payload_hash)
    qc = qc_for(block.header, root)
    successor = child(block, qc, round_ + 1, b"")
    return block, CommitCertificate((block.header, successor.header), qc_for(successor.header, root))


@pytest.fixture
def chain(tmp_path: Path) -> PayloadChain:
    c = PayloadChain(str(tmp_path / "blocks"), VS, CHAIN, SignatureVerifier(BACKEND), max_payloads=8)
    yield c
    c.close()


def test_execute_chains_the_payload_hash_and_refuses_malformed_payloads(chain: PayloadChain) -> None:
    good = child(GENESIS, GENESIS_QC, 1, b"".join(payloads(1, 3)))
    assert chain.execute(good, bytes(32)) == payload_root(bytes(32), good.header.payload_hash)
    assert chain.execute(good, b"\x01" * 32) != chain.execute(good, bytes(32))
    assert chain.execute(child(GENESIS, GENESIS_QC, 1, b"".join(payloads(1, 3)) + b"x"), bytes(32)) is None
    assert chain.execute(child(GENESIS, GENESIS_QC, 1, b"".join(payloads(1, 9))), bytes(32)) is None  # > max


def test_a_proposal_of_this_validator_commits_with_its_creation_times_and_is_stored(tmp_path: Path,
                                                                                    chain: PayloadChain) -> None:
    assert chain.add(payloads(1, 10), created_at=5.0) == 10
    payload = chain.propose(GENESIS.id, 1, now=6.0)
    assert len(payload) == 8 * 250 and chain.pool_size == 2 and chain.in_flight == 8
    block, cert = certified(payload)
    created, proposed_at = chain.finalize(block, cert)
    assert created == [5.0] * 8 and proposed_at == 6.0 and chain.in_flight == 0
    chain.commit(block, cert)
    chain.close()
    reopened = PayloadChain(str(tmp_path / "blocks"), VS, CHAIN, SignatureVerifier(BACKEND), max_payloads=8)
    try:
        assert reopened.stored_head() == (1, block.id, cert.state_root)
        assert reopened.stored_block_id(1) == block.id and reopened.stored_payloads() == 8
    finally:
        reopened.close()


def test_a_lost_proposal_gives_its_payloads_back_in_order(chain: PayloadChain) -> None:
    mine = payloads(1, 5)
    chain.add(mine, created_at=1.0)
    chain.propose(GENESIS.id, 1, now=2.0)
    assert chain.pool_size == 0
    # Another validator's block wins height 1.
    block, cert = certified(b"".join(payloads(2, 4)))
    assert chain.finalize(block, cert) == ([], None)
    assert chain.pool_size == 5 and chain.in_flight == 0
    assert chain.propose(block.id, 2, now=3.0) == b"".join(mine)


def test_a_certificate_that_does_not_verify_or_a_height_out_of_order_changes_nothing(chain: PayloadChain) -> None:
    block, cert = certified(b"".join(payloads(1, 2)))
    forged = CommitCertificate(cert.headers, qc_for(cert.headers[1], cert.state_root, range(2)))  # 2 of 4 signers
    with pytest.raises(CommitCertificateError):
        chain.finalize(block, forged)
    assert chain.height == 0 and chain.committed_payloads == 0
    later, later_cert = certified(b"", parent=block, parent_qc=cert.headers[1].qc, parent_root=cert.state_root,
                                  round_=3)  # height 2 on a chain at 0
    with pytest.raises(PayloadChainError) as refused:
        chain.finalize(later, later_cert)
    assert refused.value.code == "commit_out_of_order" and chain.height == 0


def test_percentile_of_a_millisecond_histogram() -> None:
    histogram = {3: 50, 10: 45, 250: 5}
    assert percentile_ms(histogram, 0.5) == 4.0
    assert percentile_ms(histogram, 0.9) == 11.0
    assert percentile_ms(histogram, 0.99) == 251.0
    assert percentile_ms({}, 0.5) is None


def result(index: int, height: int, ids: dict[str, str], own: int) -> dict[str, object]:
    return {"index": index, "generated": own, "write_error": None, "refused": 0, "committed_own": own, "committed_own_in_window": own,
            "pending_own": 0, "latency_ms": {"120": own}, "proposal_to_commit_ms": {"80": 1}, "height": height,
            "block_ids": ids, "committed_payloads": 10, "stored_payloads": 10, "cpu_s": 1.0, "wall_s": 2.0,
            "persist_s": 0.1, "commit_write_s": 0.1, "safety_writes": 3, "round_timeouts": 0, "round": 5,
            "bls_checks": 1, "bls_cache_hits": 1, "transport": {}, "replica": {}}


def test_the_report_compares_the_validators_at_their_common_height() -> None:
    agreeing = [result(0, 5, {"4": "aa", "5": "bb"}, 100), result(1, 4, {"4": "aa"}, 60)]
    report = ConsensusBenchReport(2, 2.0, None, 10, verify_per_s=80.0)
    summarise(report, agreeing)
    assert (report.committed, report.failed, report.tps, report.height) == (160, 0, 80.0, 4)
    assert report.p50_ms == 121.0 and report.efficiency == 1.0
    forked = [result(0, 5, {"4": "aa", "5": "bb"}, 100), result(1, 4, {"4": "cc"}, 60)]
    with pytest.raises(RuntimeError, match="disagree"):
        summarise(ConsensusBenchReport(2, 2.0, None, 10), forked)
    unwritten = [result(0, 5, {"5": "bb"}, 100), {**result(1, 5, {"5": "bb"}, 60), "write_error": "IOError()"}]
    with pytest.raises(RuntimeError, match="write failed"):
        summarise(ConsensusBenchReport(2, 2.0, None, 10), unwritten)


def test_bench_consensus_tiny_run_writes_the_json_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    code = main(["bench", "consensus", "--nodes", "4", "--duration", "1.5", "--rate", "800", "--block-payloads",
                 "400", "--drain", "6", "--verify-seconds", "0.2", "--dir", str(tmp_path / "run"), "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    for key in ("tps", "p50_ms", "p99_ms", "efficiency", "validators", "committed", "failed", "submitted",
                "verify_per_s", "verify_phase", "command"):
        assert key in doc, key
    assert doc["validators"] == 4 and doc["failed"] == 0
    assert doc["submitted"] == doc["committed"] > 0 and doc["height"] > 0
    assert doc["verify_phase"]["before_load"] is True and doc["verify_per_s"] > 0
    assert doc["p50_ms"] <= doc["p99_ms"] <= doc["max_ms"]
    assert doc["command"].startswith("ledger bench consensus --nodes 4")
    # Every validator wrote the certified blocks it committed to its own store.
    assert all(node["height"] >= doc["height"] for node in doc["per_node"])


def test_bench_consensus_refuses_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "consensus", "--rate", "fast"]) == 2
    assert main(["bench", "consensus", "--nodes", "0"]) == 2
    assert main(["bench", "consensus", "--block-payloads", "16778"]) == 2  # over the 4 MiB payload bound
    assert "error" in capsys.readouterr().err
