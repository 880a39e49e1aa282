"""Output and exit codes shared by the client commands of the `ledger` CLI (keys, tx, query, statement).

Results go to stdout as JSON; errors to stderr as one JSON object {"error": code, "message": ..., "details": ...}.
Exit codes:
    0  success
    1  the operation ran and said no: a transaction got a non-zero receipt, a statement did not verify
    2  bad input on the command line, in a file, or a key file problem
    3  the node refused the request (its error code is printed) or could not be reached
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, Final

from node.client.errors import ApiError, ClientError, LedgerClientError, TransactionFailed

__all__ = ["EXIT_FAILED", "EXIT_INPUT", "EXIT_OK", "EXIT_REMOTE", "emit", "fail", "guarded"]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_INPUT: Final = 2
EXIT_REMOTE: Final = 3

_REMOTE_CLIENT_CODES: Final = frozenset({"connection_failed", "tls_failed", "timeout", "bad_response"})


def emit(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    sys.stdout.flush()


def fail(code: int | str, message: str, details: Any = None, exit_code: int = EXIT_INPUT) -> int:
    json.dump({"error": code, "message": message, "details": details or {}}, sys.stderr, sort_keys=True)
    sys.stderr.write("\n")
    return exit_code


def guarded(run: Callable[[Any], int]) -> Callable[[Any], int]:
    """Turn SDK errors into the documented output and exit codes (never a traceback for a user error)."""

    def wrapper(args: Any) -> int:
        try:
            return run(args)
        except TransactionFailed as exc:
            emit({"tx_id": exc.tx_id, "code": exc.code, "message": exc.message, "receipt": exc.receipt})
            return EXIT_FAILED
        except ApiError as exc:
            return fail(exc.code, exc.message, {"status": exc.status, "name": exc.name, **exc.details}, EXIT_REMOTE)
        except ClientError as exc:
            return fail(exc.code, exc.message, exc.details,
                        EXIT_REMOTE if exc.code in _REMOTE_CLIENT_CODES else EXIT_INPUT)
        except LedgerClientError as exc:
            return fail("client_error", str(exc), None, EXIT_INPUT)

    wrapper.__doc__ = run.__doc__
    return wrapper
