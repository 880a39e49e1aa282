"""The `ledger` command for people (issue 17): help on every option, exact decimal amounts, client profiles and
imported keys, readable output without Python reprs, quiet exit on a closed pipe. No network here;
tests/node/tools/test_cli_network.py runs the same commands against a live testnet."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node.cli import build_parser, main
from node.cli.render import render
from node.cli.simulate import format_summary
from node.cli.testnet import describe_faults
from node.client.amounts import format_amount, parse_amount
from node.client.errors import ClientError
from node.client.keys import AccountKey, load_key
from node.client.profile import Profile, ProfileStore, key_file, resolve_target
from tests.node.cli_output import assert_no_python_repr, python_reprs

ROOT = Path(__file__).resolve().parents[2]


def _options(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield path, action


def test_every_option_and_argument_has_help() -> None:
    seen = list(_options(build_parser(), "ledger"))
    assert len(seen) > 300  # the whole tree was walked (every tx operation's fields included)
    missing = [
        f"{path} {'/'.join(a.option_strings) or a.dest}"
        for path, a in seen
        if not a.help or a.help == argparse.SUPPRESS
    ]
    assert not missing, "options without help text:\n" + "\n".join(missing)


# -- amounts ---------------------------------------------------------------------------------------------------


def test_amounts_convert_exactly_to_base_units() -> None:
    assert parse_amount("12.50", 2) == 1250 and parse_amount("12", 2) == 1200 and parse_amount("0.01", 2) == 1
    assert parse_amount("12.500", 2) == 1250  # trailing zeros beyond the decimals change nothing
    assert parse_amount("7", 0) == 7
    # exact where a float is not: 2^64 - 1 base units with 3 decimals, and 0.1 + 0.2
    assert parse_amount("18446744073709551.615", 3) == 2**64 - 1
    assert parse_amount("0.3", 1) == parse_amount("0.1", 1) + parse_amount("0.2", 1) == 3
    assert parse_amount("1.000000000000000001", 18) == 10**18 + 1
    with pytest.raises(ClientError) as exc:
        parse_amount("12.505", 2)
    assert exc.value.code == "amount_precision" and "2" in exc.value.message and "0.01" in exc.value.message
    with pytest.raises(ClientError) as exc:
        parse_amount("1.5", 0)
    assert exc.value.code == "amount_precision"
    for bad in ("", "-1", "+1", "1e3", "1.", ".5", "1,000", " 1", "1 ", "0x10", "nan", "1.2.3", "١٢"):
        with pytest.raises(ClientError) as exc:
            parse_amount(bad, 2)
        assert exc.value.code == "bad_input", bad
    assert format_amount(1250, 2) == "12.50" and format_amount(1, 2) == "0.01" and format_amount(7, 0) == "7"
    for units in (0, 1, 99, 100, 2**64 - 1):
        assert parse_amount(format_amount(units, 6), 6) == units


def test_offline_amounts_need_the_decimals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "a.key"
    main(["keys", "new", "--account", "alice@bank-a", "--out", str(key), "--plaintext-keys"])
    capsys.readouterr()
    common = ["--key", str(key), "--offline", "--chain-id", "c", "--tx-expiry-height", "9", "--nonce", "1"]
    assert main(["tx", "issue", "--asset", "BOND-A", "--recipient", "bob@bank-b", "--amount", "12.50", *common]) == 2
    assert "--decimals" in json.loads(capsys.readouterr().err)["message"]
    assert (
        main(
            [
                "tx",
                "issue",
                "--asset",
                "BOND-A",
                "--recipient",
                "bob@bank-b",
                "--amount",
                "12.50",
                "--decimals",
                "2",
                *common,
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["body"]["operations"][0]["amount"] == 1250
    assert (
        main(
            [
                "tx",
                "transfer",
                "--asset",
                "BOND-A",
                "--to",
                "bob@bank-b",
                "--amount",
                "0.125",
                "--decimals",
                "2",
                *common,
            ]
        )
        == 2
    )
    err = json.loads(capsys.readouterr().err)
    assert err["error"] == "amount_precision" and err["message"].startswith("--amount '0.125' has 3 decimals")
    assert (
        main(["tx", "transfer", "--asset", "BOND-A", "--to", "bob@bank-b", "--amount", "3", "--decimals", "2", *common])
        == 0
    )
    legs = json.loads(capsys.readouterr().out)["body"]["operations"][0]["legs"]
    assert legs == [{"recipient": "bob@bank-b", "amount": 300}]
    # legs JSON: an integer is base units (the wire form), a string is in the asset's units
    legs_json = '[{"recipient": "bob@bank-b", "amount": 7}, {"recipient": "carol@bank-c", "amount": "0.07"}]'
    assert main(["tx", "transfer", "--asset", "BOND-A", "--legs", legs_json, "--decimals", "2", *common]) == 0
    legs = json.loads(capsys.readouterr().out)["body"]["operations"][0]["legs"]
    assert [leg["amount"] for leg in legs] == [7, 7]
    assert main(["tx", "transfer", "--asset", "BOND-A", "--to", "bob@bank-b", *common, "--decimals", "2"]) == 2
    assert "go together" in json.loads(capsys.readouterr().err)["message"]


# -- profiles and keys -----------------------------------------------------------------------------------------


def test_which_node_a_command_uses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ProfileStore(str(tmp_path / "home"))
    with pytest.raises(ClientError) as exc:
        resolve_target(store=store)
    assert exc.value.code == "no_node" and "ledger testnet up" in exc.value.message
    store.put(Profile("a", ("http://127.0.0.1:1",)))
    store.put(Profile("b", ("http://127.0.0.1:2",)), make_current=False)
    assert resolve_target(store=store).url == "http://127.0.0.1:1"  # the current profile
    monkeypatch.setenv("LEDGER_PROFILE", "b")
    assert resolve_target(store=store).url == "http://127.0.0.1:2"
    monkeypatch.setenv("LEDGER_URL", "http://127.0.0.1:3/")
    assert resolve_target(store=store).url == "http://127.0.0.1:3"  # $LEDGER_URL beats $LEDGER_PROFILE
    assert resolve_target(profile="a", store=store).url == "http://127.0.0.1:1"  # a flag beats the environment
    assert resolve_target("http://127.0.0.1:4", "a", store=store).url == "http://127.0.0.1:4"  # --node beats all
    with pytest.raises(ClientError) as exc:
        resolve_target(profile="nope", store=store)
    assert exc.value.code == "profile_unknown" and "a, b" in exc.value.message
    with pytest.raises(ClientError):
        resolve_target("ftp://x", store=store)
    # a corrupt profiles file is a clear error, never a traceback
    Path(store.path).write_text("{not json")
    monkeypatch.delenv("LEDGER_URL")
    with pytest.raises(ClientError) as exc:
        resolve_target(store=store)
    assert exc.value.code == "profile_malformed"


def test_keys_import_list_and_use_by_account(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seeds = {"admin@m0": "11" * 32, "user-0@m0": "22" * 32}
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps(seeds))
    genesis = tmp_path / "genesis.json"
    genesis.write_text("{}")
    # no profile yet: importing without a destination says what to do
    assert main(["keys", "import", "--accounts", str(accounts)]) == 2
    assert json.loads(capsys.readouterr().err)["error"] == "no_profile"
    assert (
        main(
            [
                "profile",
                "add",
                "local",
                "--url",
                "http://127.0.0.1:9",
                "--genesis",
                str(genesis),
                "--accounts",
                str(accounts),
            ]
        )
        == 0
    )
    assert main(["keys", "import"]) == 0  # the profile's accounts file
    out = capsys.readouterr().out
    assert "imported admin@m0" in out and "2 key file(s)" in out
    assert_no_python_repr(out)
    path = key_file("user-0@m0")
    assert load_key(path) == AccountKey.from_seed("user-0@m0", bytes.fromhex(seeds["user-0@m0"]))
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert main(["keys", "import"]) == 2  # never overwrites a key silently
    assert json.loads(capsys.readouterr().err)["error"] == "key_file_exists"
    assert main(["keys", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [k["account"] for k in listed["keys"]] == ["admin@m0", "user-0@m0"]
    assert main(["keys", "list"]) == 0
    assert_no_python_repr(capsys.readouterr().out)
    # one seed, to a file
    out_file = tmp_path / "bob.key"
    assert main(["keys", "import", "--seed", "33" * 32, "--account", "bob@m1", "--out", str(out_file)]) == 0
    capsys.readouterr()
    assert load_key(str(out_file)).account == "bob@m1"
    assert main(["keys", "import", "--seed", "zz", "--account", "bob@m1", "--out", str(tmp_path / "x")]) == 2
    assert json.loads(capsys.readouterr().err)["error"] == "key_bad_seed"
    with pytest.raises(ClientError) as exc:
        key_file("carol@m2")
    assert exc.value.code == "key_file_missing" and "ledger keys import" in exc.value.message


def test_profile_commands_read_well(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "list"]) == 0
    assert "no profiles" in capsys.readouterr().out
    genesis = tmp_path / "genesis.json"
    genesis.write_text('{"a": 1}')
    assert main(["profile", "add", "one", "--url", "http://127.0.0.1:5", "--genesis", str(genesis)]) == 0
    assert main(["profile", "add", "two", "--url", "http://127.0.0.1:6", "--no-use"]) == 0
    assert main(["profile", "list"]) == 0
    listing = capsys.readouterr().out
    assert "* one" in listing and "  two" in listing
    assert main(["profile", "use", "two"]) == 0
    assert main(["profile", "show"]) == 0
    shown = capsys.readouterr().out
    assert "two (current)" in shown and "http://127.0.0.1:6" in shown and "not recorded" in shown
    for text in (listing, shown):
        assert_no_python_repr(text)
    assert main(["profile", "show", "one", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["genesis"] == str(genesis)
    # a profile re-recorded for another chain (another genesis) drops the keys imported for the old one
    store = ProfileStore()
    os.makedirs(store.keys_dir("one"))
    Path(store.keys_dir("one"), "x.key").write_text("{}")
    genesis.write_text('{"a": 2}')
    assert main(["profile", "add", "one", "--url", "http://127.0.0.1:5", "--genesis", str(genesis)]) == 0
    assert not os.path.exists(store.keys_dir("one"))
    assert main(["profile", "remove", "two"]) == 0 and main(["profile", "use", "two"]) == 2


def test_statement_without_genesis_says_it_is_not_verified() -> None:
    from node.cli.statement import NOT_VERIFIED

    assert NOT_VERIFIED.startswith("not verified: no genesis given") and "--genesis" in NOT_VERIFIED


# -- readable output -------------------------------------------------------------------------------------------


def test_the_repr_scanner_finds_reprs() -> None:
    for bad in (
        "partition=None slow={'3': 200}",
        "recovered: True",
        "cpu per node {'node-0': 25.7}",
        "x ['a', 'b']",
        "<node.x.Y object at 0x7f>",
        "Namespace(node=1)",
        "Traceback (most recent call last):",
    ):
        assert python_reprs(bad), bad
    for good in (
        '{"a": 1, "ok": true, "v": null}',
        "faults in force: partition node-0,node-1 | node-2",
        "it's",
        "('day 181')",
        "'day 10': can A",
        "refused as expected - ledger: 107 THRESHOLD_NOT_MET (M of N)",
    ):
        assert not python_reprs(good), good


def test_render_shows_units_dates_and_no_reprs() -> None:
    doc: dict[str, Any] = {
        "account": "a@m",
        "height": 5,
        "balances": [{"asset": "CASH-T", "available": 1250, "held": 0, "frozen": 3, "total": 1253}],
        "time": 1796223364,
        "open": True,
        "fatal": None,
        "items": [],
        "ratio": 0.5,
        "isin": "",
    }
    text = render(doc, lambda asset: {"CASH-T": 2}.get(asset))
    assert "available: 12.50 CASH-T" in text and "frozen: 0.03 CASH-T" in text
    assert "time: 2026-12-02 14:56:04 UTC (1796223364)" in text
    assert "open: yes" in text and "fatal: none" in text and "items: none" in text and "isin: (empty)" in text
    assert "height: 5" in text  # heights are not amounts or times
    assert "1250 base units of CASH-T" in render(doc)  # decimals unknown: said so, never guessed
    assert_no_python_repr(text)


def test_reports_have_no_reprs() -> None:
    faults = describe_faults({"partition": [[0, 1], [2, 3]], "slow": {"3": 200}})
    assert faults == "partition node-0,node-1 | node-2,node-3; node-3 slowed by 200 ms"
    assert describe_faults({}) == "none"
    from node.tools.chaos import ChaosReport, summary
    from node.tools.report_text import per_node

    report = ChaosReport(seed=1, duration_s=5.0)
    report.faults = {"slow": 3, "kill": 1}
    report.recovered = True
    text = summary(report)
    assert "faults: kill x1, slow x3" in text and "recovered: yes" in text
    assert per_node({"node-0": 25.7, "node-1": None}, "%") == "node-0 25.7%, node-1 n/a%"
    assert_no_python_repr(text + "\n" + faults)


def test_simulate_text_differs_from_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["simulate", "--seeds", "1", "--rounds", "5", "--no-crashes", "--no-partitions", "--no-all-restart"]
    assert main([*args, "--json"]) == 0
    as_json = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    text = capsys.readouterr().out
    assert text.startswith("simulated 1 seeds of consensus replicas") and "every seed safe and live" in text
    assert f"commits            {as_json['commits']}" in text
    assert text.strip() != json.dumps(as_json, sort_keys=True)
    assert_no_python_repr(text)
    assert "FAILED seeds: 3 7" in format_summary({**as_json, "failed_seeds": [3, 7]})


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`ledger ... | head`: the reader is gone before the command writes; no traceback, no error message."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for argv in (["profile", "list", "--json"], ["tx", "--help"]):
        proc = subprocess.Popen(
            [sys.executable, "-m", "node.cli", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=tmp_path,
        )
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        err = proc.stderr.read().decode()
        code = proc.wait(timeout=60)
        assert "Traceback" not in err and "BrokenPipe" not in err, err
        assert code in (0, 141), (argv, code, err)


def test_progress_lines_while_work_runs_and_none_after() -> None:
    import io
    import time

    from node.tools.progress import Ticker

    out = io.StringIO()
    calls = []
    with Ticker(lambda: f"step {len(calls)}" if not calls.append(1) else "", out, interval=0.05):
        deadline = time.monotonic() + 30
        while out.getvalue().count("\n") < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    written = out.getvalue()
    assert written.startswith("  ... ") and "s step 1\n" in written
    time.sleep(0.2)
    assert out.getvalue() == written  # nothing after the work ended
    quiet = io.StringIO()
    with Ticker(lambda: "never", quiet, interval=60):
        pass
    assert quiet.getvalue() == ""  # work shorter than the interval prints nothing


def test_bench_reports_have_no_reprs() -> None:
    from node.tools import bench_consensus, loadgen

    report = loadgen.BenchReport(4, 10.0, None)
    report.cpu_per_node, report.peak_rss_mb, report.failed_codes = {"node-0": 25.7}, {"node-0": 80.0}, {"305": 2}
    text = loadgen.format_report(report)
    assert "cpu per node   node-0 25.7%" in text and "codes: 305 2" in text and "p50 n/a" in text
    consensus = bench_consensus.ConsensusBenchReport(4, 5.0, None, 64)
    consensus.cpu_per_node, consensus.proposal_to_commit_ms = {"node-1": 12.5}, {"p50": 40.0, "p99": None}
    consensus.load_before = (1.5, 1.0, 0.5)
    text += "\n" + bench_consensus.format_report(consensus)
    assert "loadavg        before 1.5 1.0 0.5" in text and "p99 n/a" in text
    assert_no_python_repr(text)
