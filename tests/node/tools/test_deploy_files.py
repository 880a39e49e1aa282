"""deploy/ (issue 16 parts 5 and 6): the systemd unit, the Containerfile, the Prometheus rules and the Grafana
dashboard carry what docs/operations.md promises. (`systemd-analyze verify` and image builds are run by hand where
available: docs/operations.md, "Running as a service", says what was run.) A running node exporting every metric
they name is checked in tests/node/tools/test_runbook.py."""

from __future__ import annotations

import configparser
import json
import re
import shlex
from pathlib import Path

import yaml

from node.cli import build_parser

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  (keys are case-sensitive)
    parser.read_string((DEPLOY / "systemd" / "ledger-node.service").read_text())
    return parser


def test_systemd_unit_essentials() -> None:
    service = unit()["Service"]
    assert service["User"] not in ("", "root") and service["Group"] not in ("", "root")
    assert service["Restart"] == "on-failure"
    assert set(service["RestartPreventExitStatus"].split()) == {"3", "4"}  # halted / disk failed: no restart loop
    assert service["KillSignal"] == "SIGTERM" and int(service["TimeoutStopSec"]) >= 30
    assert service["StateDirectory"] == "ledger" and service["WorkingDirectory"] == "/var/lib/ledger"
    assert service["UMask"] == "0077"
    for option in (
        "NoNewPrivileges",
        "ProtectHome",
        "PrivateTmp",
        "PrivateDevices",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectControlGroups",
        "RestrictNamespaces",
        "RestrictSUIDSGID",
        "LockPersonality",
    ):
        assert service[option] == "yes", option
    assert service["ProtectSystem"] == "strict" and service["CapabilityBoundingSet"] == ""
    assert set(service["RestrictAddressFamilies"].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    # ExecStart is a real `ledger node run` command line: it parses with the CLI's own parser.
    argv = shlex.split(service["ExecStart"])
    assert argv[0].endswith("/ledger") and argv[1:3] == ["node", "run"]
    args = build_parser().parse_args(argv[1:])
    assert args.config == "/var/lib/ledger/config.toml" and args.passphrase_file == "%d/passphrase"
    assert service["LoadCredential"].startswith("passphrase:")
    assert unit()["Install"]["WantedBy"] == "multi-user.target"


def containerfile() -> list[tuple[str, str]]:
    text = (DEPLOY / "Containerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def test_containerfile_essentials() -> None:
    instructions = containerfile()
    final = instructions[max(i for i, (word, _) in enumerate(instructions) if word == "FROM") :]  # the last stage
    words = dict(final)
    assert words["USER"] not in ("root", "0")
    assert json.loads(words["VOLUME"]) == ["/var/lib/ledger"]
    assert words["STOPSIGNAL"] == "SIGTERM"
    health = words["HEALTHCHECK"]
    assert "--interval=" in health and "CMD" in health
    assert any("/health" in rest for word, rest in final if word == "ENV")  # LEDGER_HEALTH_URL
    entry = json.loads(words["ENTRYPOINT"]) + json.loads(words["CMD"])
    args = build_parser().parse_args(entry[1:])
    assert entry[:3] == ["ledger", "node", "run"] and args.config == "/var/lib/ledger/config.toml"
    assert set(re.findall(r"\d+", words["EXPOSE"])) == {"7100", "8100"}


def test_alerting_rules_structure() -> None:
    doc = yaml.safe_load((DEPLOY / "prometheus" / "ledger-alerts.yml").read_text())
    rules = [rule for group in doc["groups"] for rule in group["rules"]]
    assert all(set(group) == {"name", "rules"} for group in doc["groups"])
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"} and rule["expr"].strip()
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert {"summary", "description"} <= set(rule["annotations"])
        assert re.fullmatch(r"\d+[smh]", rule["for"])
        assert rule["expr"].count("(") == rule["expr"].count(")")
    exprs = {rule["alert"]: rule["expr"] for rule in rules}
    # The five situations issue 16 names: node down, no commit, peers below quorum, mempool near full, disk full.
    assert "up{" in exprs["LedgerNodeDown"]
    assert "ledger_height" in exprs["LedgerNoCommit"]
    assert "ledger_quorum_peers" in exprs["LedgerPeersBelowQuorum"]
    assert "ledger_mempool_max_txs" in exprs["LedgerMempoolNearlyFull"]
    assert "ledger_data_dir_free_bytes" in exprs["LedgerDiskNearlyFull"]
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml.example").read_text())
    assert scrape["rule_files"] == ["ledger-alerts.yml"] and scrape["scrape_configs"][0]["job_name"] == "ledger"


def test_grafana_dashboard_structure() -> None:
    doc = json.loads((DEPLOY / "grafana" / "ledger-node.json").read_text())
    assert doc["uid"] and doc["title"] and doc["panels"]
    ids = [panel["id"] for panel in doc["panels"]]
    assert len(ids) == len(set(ids))
    for panel in doc["panels"]:
        assert panel["targets"] and all(t["expr"] and t["refId"] for t in panel["targets"])
        assert panel["datasource"]["uid"] == "${datasource}"
    variables = {v["name"] for v in doc["templating"]["list"]}
    assert variables == {"datasource", "instance"}
