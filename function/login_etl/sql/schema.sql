-- login-etl schema. Idempotent: safe to run on every cold start, by several functions at once
-- (`login-etl migrate` and the function both run it inside one transaction holding an advisory
-- lock), and as a plain psql script (docker-compose mounts it into docker-entrypoint-initdb.d).

-- Exercise-compatible columns, so existing queries keep working; message_id is the idempotency key.
CREATE TABLE IF NOT EXISTS user_logins (
    user_id          varchar(128),
    device_type      varchar(32),
    masked_ip        varchar(256),
    masked_device_id varchar(256),
    locale           varchar(32),
    app_version      integer,
    create_date      date,
    message_id       varchar(128) NOT NULL,
    CONSTRAINT user_logins_message_id_key UNIQUE (message_id)
);

-- Upgrade an exercise-style user_logins that predates message_id: existing rows get
-- legacy:<uuid> keys. Guarded by a catalog check so a routine run never scans the table.
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = current_schema()
          AND table_name = 'user_logins' AND column_name = 'message_id'
    ) THEN
        ALTER TABLE user_logins ADD COLUMN message_id varchar(128);
        UPDATE user_logins SET message_id = 'legacy:' || gen_random_uuid();
        ALTER TABLE user_logins ALTER COLUMN message_id SET NOT NULL;
        ALTER TABLE user_logins ADD CONSTRAINT user_logins_message_id_key UNIQUE (message_id);
    END IF;
END
$$;

-- Records that retrying cannot fix. The raw body is stored AES-SIV encrypted under the PII key
-- ring (associated data "body"), so an operator with the key can inspect and replay it.
CREATE TABLE IF NOT EXISTS user_logins_rejected (
    message_id     varchar(128) PRIMARY KEY,
    reason         varchar(32)  NOT NULL,
    detail         text         NOT NULL,
    body_encrypted text         NOT NULL,
    sent_at        timestamptz,
    rejected_at    timestamptz  NOT NULL DEFAULT now(),
    source_arn     text
);

CREATE INDEX IF NOT EXISTS user_logins_rejected_rejected_at_idx
    ON user_logins_rejected (rejected_at);

-- Bulk-load landing zone: each batch COPYs here and moves its rows into user_logins in the same
-- transaction, so other sessions never see them (MVCC) and nothing survives a commit. UNLOGGED
-- because its content never outlives a transaction; a permanent table (not TEMP) because temp
-- tables pin connections behind RDS Proxy.
CREATE UNLOGGED TABLE IF NOT EXISTS user_logins_staging (
    user_id          text,
    device_type      text,
    masked_ip        text,
    masked_device_id text,
    locale           text,
    app_version      integer,
    create_date      date,
    message_id       text
);

-- When each row landed, for `login-etl status` (rows per hour, progress). A guarded upgrade, so
-- a routine run takes no lock on user_logins. Rows that predate it keep NULL: their load time is
-- unknown, and stamping them with the migration's time would invent a burst. The default fills
-- it on every insert path (COPY and INSERT name their columns). BRIN rather than btree: the
-- value grows with insertion order, so a block-range index of a few pages finds "the rows of the
-- last day" in a table of millions, and costs the COPY path next to nothing (autosummarize keeps
-- the newest ranges summarized without waiting for VACUUM).
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_attribute
        WHERE attrelid = to_regclass('user_logins') AND attname = 'loaded_at' AND NOT attisdropped
    ) THEN
        ALTER TABLE user_logins ADD COLUMN loaded_at timestamptz;
        ALTER TABLE user_logins ALTER COLUMN loaded_at SET DEFAULT now();
    END IF;
    IF to_regclass('user_logins_loaded_at_brin') IS NULL THEN
        CREATE INDEX user_logins_loaded_at_brin ON user_logins
            USING brin (loaded_at) WITH (autosummarize = on);
    END IF;
END
$$;
