"""Who plays in `ledger demo` scenarios 1-4: the consortium admin of the testnet's genesis (`admin@m0`), the
institutions the story opens accounts for, and the two assets (the bond and the cash token)."""

from __future__ import annotations

from typing import Final

BOND: Final = "BOND-A"
CASH: Final = "CASH-T"
ADMIN: Final = "admin@m0"
ISSUER: Final = "issuer@m0"
KYC: Final = "kyc@m1"
AGENT: Final = "agent@m2"
ESCROW: Final = "escrow@m0"
INVESTOR_A: Final = "investor-a@m1"
INVESTOR_B: Final = "investor-b@m2"
INVESTOR_C: Final = "investor-c@m3"
INVESTOR_D: Final = "investor-d@m1"
LABELS: Final = {ISSUER: "Issuer", KYC: "KYC provider", AGENT: "Agent", ESCROW: "Escrow", INVESTOR_A: "Investor A",
                 INVESTOR_B: "Investor B", INVESTOR_C: "Investor C", INVESTOR_D: "Investor D", ADMIN: "Admin"}
ONE_YEAR_S: Final = 365 * 86400
