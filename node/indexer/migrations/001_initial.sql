-- Schema 1 of the ledger indexer (docs/indexer.md). Amounts are NUMERIC(20,0): a ledger amount is a uint64, beyond
-- PostgreSQL's bigint; deltas are signed. Heights are bigint. Times are the block's time (UTC).

CREATE TABLE indexer_checkpoint (
    id          smallint PRIMARY KEY CHECK (id = 1),
    chain_id    text     NOT NULL,
    genesis_hash bytea   NOT NULL,
    height      bigint   NOT NULL,
    block_hash  bytea    NOT NULL,
    state_root  bytea    NOT NULL
);

CREATE TABLE epochs (
    epoch        bigint PRIMARY KEY,
    start_height bigint NOT NULL,
    end_height   bigint,                  -- the epoch-ending block, once known
    validators   text[] NOT NULL,         -- validator ids in signer-bitmap order
    powers       bigint[] NOT NULL
);

CREATE TABLE assets (
    asset          text   PRIMARY KEY,
    issuer         text,
    defined_height bigint NOT NULL            -- 0: defined in the genesis
);

CREATE TABLE blocks (
    height       bigint PRIMARY KEY,
    block_hash   bytea       NOT NULL UNIQUE,
    time         timestamptz NOT NULL,
    epoch        bigint      NOT NULL,
    round        bigint      NOT NULL,
    proposer     text        NOT NULL,
    state_root   bytea       NOT NULL,
    tx_count     integer     NOT NULL,
    signers      text[]      NOT NULL,    -- validators whose votes form the certificate's QC
    signer_power bigint      NOT NULL,
    certificate  bytea                    -- null for the genesis block only
);
CREATE INDEX blocks_time ON blocks (time);

CREATE TABLE transactions (
    tx_id     bytea    NOT NULL,           -- unique, but keyed by position: a transaction rejected for good (code
    height    bigint   NOT NULL REFERENCES blocks (height),  -- 1..199) may be included again later
    idx       integer  NOT NULL,           -- position in the block
    code      integer  NOT NULL,           -- receipt code: 0 ok, >= 200 refused (changed nothing), 1..199 rejected
    reason    text     NOT NULL,           -- the code's name (docs/reason-codes.md)
    failed_op integer,
    detail    text     NOT NULL,
    PRIMARY KEY (height, idx)
);
CREATE INDEX transactions_tx_id ON transactions (tx_id);

CREATE TABLE events (
    height   bigint  NOT NULL REFERENCES blocks (height),
    seq      integer NOT NULL,             -- order in the block (the block's own events first)
    tx_id    bytea   NOT NULL,             -- 32 zero bytes: the block's own step
    op_index integer NOT NULL,
    kind     text    NOT NULL,
    attrs    jsonb   NOT NULL,
    PRIMARY KEY (height, seq)
);
CREATE INDEX events_kind ON events (kind, height);

CREATE TABLE balance_movements (
    height  bigint         NOT NULL REFERENCES blocks (height),
    seq     integer        NOT NULL,       -- order in the block
    tx_id   bytea          NOT NULL,
    asset   text           NOT NULL,
    account text           NOT NULL,
    bucket  text           NOT NULL CHECK (bucket IN ('available', 'held', 'frozen')),
    delta   numeric(21, 0) NOT NULL CHECK (delta <> 0),
    PRIMARY KEY (height, seq)
);
CREATE INDEX balance_movements_account ON balance_movements (account, asset, height);
CREATE INDEX balance_movements_asset ON balance_movements (asset, height);
CREATE INDEX balance_movements_tx ON balance_movements (tx_id);

-- The position of every (asset, account) now, and after every block that changed it.
CREATE TABLE positions (
    asset     text           NOT NULL,
    account   text           NOT NULL,
    available numeric(20, 0) NOT NULL,     -- (no CHECK here: an upsert checks the proposed delta row;
    held      numeric(20, 0) NOT NULL,     --  position_snapshots checks every resulting position)
    frozen    numeric(20, 0) NOT NULL,
    height    bigint         NOT NULL,
    PRIMARY KEY (asset, account)
);
CREATE INDEX positions_account ON positions (account);

CREATE TABLE position_snapshots (
    asset     text           NOT NULL,
    account   text           NOT NULL,
    height    bigint         NOT NULL,
    available numeric(20, 0) NOT NULL CHECK (available >= 0),
    held      numeric(20, 0) NOT NULL CHECK (held >= 0),
    frozen    numeric(20, 0) NOT NULL CHECK (frozen >= 0),
    PRIMARY KEY (asset, account, height)
);
CREATE INDEX position_snapshots_account ON position_snapshots (account, asset, height);

-- Supply per asset after every block that changed it (the sum of its positions).
CREATE TABLE supply_history (
    asset       text           NOT NULL,
    height      bigint         NOT NULL,
    outstanding numeric(20, 0) NOT NULL,
    PRIMARY KEY (asset, height)
);

CREATE TABLE holds (
    hold_id        text           PRIMARY KEY,
    asset          text           NOT NULL,
    sender         text           NOT NULL,
    recipient      text           NOT NULL,
    notary         text           NOT NULL,
    amount         numeric(20, 0) NOT NULL,
    expires_at     timestamptz    NOT NULL,
    status         text           NOT NULL CHECK (status IN ('open', 'executed', 'released', 'expired')),
    created_height bigint         NOT NULL,
    created_tx     bytea          NOT NULL,
    closed_height  bigint,
    closed_tx      bytea,
    closed_how     text                    -- executed, released_by_notary, released_by_payee, expired
);
CREATE INDEX holds_open ON holds (status, created_height);

CREATE TABLE freezes (
    height  bigint         NOT NULL,
    seq     integer        NOT NULL,       -- the event's seq
    tx_id   bytea          NOT NULL,
    kind    text           NOT NULL,       -- account_frozen, account_unfrozen, amount_frozen, amount_unfrozen
    account text           NOT NULL,
    asset   text,
    amount  numeric(20, 0),
    actor   text,
    reason  text,
    PRIMARY KEY (height, seq)
);
CREATE INDEX freezes_account ON freezes (account, height);

CREATE TABLE corporate_actions (
    action            text   PRIMARY KEY,
    action_kind       smallint NOT NULL,       -- 1 distribution (coupon, dividend), 2 redemption at maturity
    asset             text   NOT NULL,
    pay_asset         text,
    payer             text,
    remainder_account text,
    record_height     bigint,
    rate_num          numeric(20, 0),
    rate_den          numeric(20, 0),
    announced_height  bigint NOT NULL,
    announced_tx      bytea  NOT NULL
);

CREATE TABLE corporate_action_payments (
    height    bigint         NOT NULL,
    seq       integer        NOT NULL,
    tx_id     bytea          NOT NULL,
    action    text           NOT NULL,
    kind      text           NOT NULL,     -- distribution_paid or maturity_redeemed
    asset     text           NOT NULL,
    payer     text,                        -- distribution: who paid; maturity: the holder whose units were burnt
    recipient text,
    amount    numeric(20, 0) NOT NULL,
    frozen    boolean        NOT NULL,
    PRIMARY KEY (height, seq)
);
CREATE INDEX corporate_action_payments_action ON corporate_action_payments (action);

CREATE TABLE proposals (
    proposal_id    text   PRIMARY KEY,
    proposer       text   NOT NULL,
    actions        text   NOT NULL,
    expiry_height  bigint NOT NULL,
    created_height bigint NOT NULL,
    status         text   NOT NULL CHECK (status IN ('open', 'executed', 'cancelled')),
    approvals      integer NOT NULL,
    closed_height  bigint
);

CREATE TABLE proposal_events (
    height      bigint  NOT NULL,
    seq         integer NOT NULL,
    tx_id       bytea   NOT NULL,
    proposal_id text    NOT NULL,
    kind        text    NOT NULL,
    attrs       jsonb   NOT NULL,
    PRIMARY KEY (height, seq)
);
