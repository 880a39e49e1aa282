"""The node chooses its BLS backend where it is assembled (node/chain/protocol.py, `bls_backend`): the config file's
`[bls] backend`, else the environment variable LEDGER_BLS_BACKEND, else consensus.bls's default. The consensus layer
reads no environment (tests/consensus/test_bls.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from consensus import bls
from consensus.bls import BlsError
from node.chain.protocol import BLS_BACKEND_ENV_VAR, bls_backend
from node.chain.sigverify import Ed25519Verifier
from node.tools.localnet import generate_network
from node.validator.config import ConfigError, load_config, write_config
from node.validator.node import ValidatorNode

ROOT = Path(__file__).resolve().parents[3]
FAST = bls.get_backend("blspy")
REF = bls.get_backend("py_ecc")


def test_name_then_environment_then_default() -> None:
    assert BLS_BACKEND_ENV_VAR == "LEDGER_BLS_BACKEND"
    assert bls_backend(None, {}) is FAST  # blspy is importable here
    assert bls_backend(None, {BLS_BACKEND_ENV_VAR: "py_ecc"}) is REF
    assert bls_backend(None, {BLS_BACKEND_ENV_VAR: " "}) is FAST  # empty = unset
    assert bls_backend("blspy", {BLS_BACKEND_ENV_VAR: "py_ecc"}) is FAST  # the config option wins
    assert bls_backend("py_ecc", {}) is REF
    for name, env in (("openssl", {}), (None, {BLS_BACKEND_ENV_VAR: "openssl"})):
        with pytest.raises(BlsError) as err:
            bls_backend(name, env)
        assert err.value.code == BlsError.UNKNOWN_BACKEND


def test_environment_variable_selects_the_node_backend() -> None:
    code = "from node.chain.protocol import bls_backend; print(bls_backend().name)"
    for value, expected in (("py_ecc", "py_ecc"), ("blspy", "blspy"), ("", "blspy")):
        env = {**os.environ, BLS_BACKEND_ENV_VAR: value}
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                             check=True)
        assert out.stdout.split()[0] == expected
    env = {**os.environ, BLS_BACKEND_ENV_VAR: "nonsense"}
    out = subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode != 0 and BlsError.UNKNOWN_BACKEND in out.stderr


def test_config_option_reaches_the_validator(tmp_path: Path) -> None:
    layout = generate_network(str(tmp_path), 1, chain_id="bls-config", users=1, seed=b"bls-config")
    path = layout.config_paths[0]
    config = load_config(path)
    assert config.bls_backend is None
    write_config(path, dataclasses.replace(config, bls_backend="py_ecc"))
    config = load_config(path)
    assert config.bls_backend == "py_ecc"
    text = Path(path).read_text()
    assert '[bls]\nbackend = "py_ecc"' in text
    Path(path).write_text(text.replace('backend = "py_ecc"', 'backend = "openssl"'))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.code == "config_bad_field"

    async def run() -> None:
        with Ed25519Verifier(workers=0) as sig_verifier:
            node = ValidatorNode.from_config(config, sig_verifier=sig_verifier)
            try:
                assert node.app.bls.backend is REF
            finally:
                await node.stop()

    asyncio.run(run())
