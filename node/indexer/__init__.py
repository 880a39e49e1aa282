"""`ledger index`: the certified chain into PostgreSQL, verified (docs/indexer.md). One idea a module:

verify.py      what is checked of every block before a row of it is written (certificate, epochs, bytes, receipts)
rows.py        a verified block as table rows (pure)
store.py       the write: a batch of blocks and the checkpoint in one SQL transaction; the genesis seed
audit.py       PostgreSQL against state proofs (supply per asset, sampled balances)
schema.py      plain-SQL migrations (migrations/NNN_name.sql) and the refusal of a newer schema
run.py         the loop: sessions, prefetch, retries with backoff, status lines, DSN redaction
errors.py      the stable error codes
pgcluster.py   a throwaway PostgreSQL cluster for tests and benchmarks
"""
