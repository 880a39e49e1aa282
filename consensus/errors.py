"""The consensus layer's error shape: every error it raises on purpose is a ConsensusError with a stable code and a
message.

    raise CommitCertificateError(CommitCertificateError.BAD_QC, "the QC on the last header does not verify")

Codes are snake_case strings that never change meaning, prefixed by what they are about (`codec_`, `validators_`,
`bls_`, `commit_`, `epoch_proof_`); each subclass lists its codes as class constants. The subclasses exist only
where callers catch one kind specifically and add no state. A ConsensusError is a ValueError: it always means bad
input (bytes, keys, certificates), never a broken invariant of the replica, which is an assertion.
"""

from __future__ import annotations

__all__ = ["ConsensusError"]


class ConsensusError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
