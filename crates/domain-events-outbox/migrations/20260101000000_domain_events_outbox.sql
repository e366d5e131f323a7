-- The transactional outbox of domain-events (crate domain-events-outbox), table public.domain_events_outbox.
-- Idempotent: creates only what is missing. docs/contract.md describes every column.
CREATE SCHEMA IF NOT EXISTS "public";

CREATE TABLE IF NOT EXISTS "public"."domain_events_outbox" (
    sequence        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        uuid NOT NULL,
    category        text NOT NULL,
    event_type      text NOT NULL,
    version         integer NOT NULL,
    idempotency_key text NOT NULL,
    correlation_id  text NOT NULL,
    envelope        text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    dead_at         timestamptz
);

CREATE TABLE IF NOT EXISTS "public"."domain_events_outbox_relays" (
    relay_id   text PRIMARY KEY,
    host       text NOT NULL,
    pid        integer NOT NULL,
    started_at timestamptz NOT NULL,
    seen_at    timestamptz NOT NULL,
    stopped_at timestamptz
);

CREATE OR REPLACE FUNCTION "public"."domain_events_outbox_notify"() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pg_notify('public.domain_events_outbox', '');
    RETURN NULL;
END
$fn$;

DO $do$
BEGIN
    IF to_regclass('"public"."domain_events_outbox_pending"') IS NULL THEN
        CREATE INDEX "domain_events_outbox_pending" ON "public"."domain_events_outbox" (sequence)
            WHERE published_at IS NULL AND dead_at IS NULL;
    END IF;
    IF to_regclass('"public"."domain_events_outbox_published"') IS NULL THEN
        CREATE INDEX "domain_events_outbox_published" ON "public"."domain_events_outbox" (published_at)
            WHERE published_at IS NOT NULL;
    END IF;
    IF to_regclass('"public"."domain_events_outbox_dead"') IS NULL THEN
        CREATE INDEX "domain_events_outbox_dead" ON "public"."domain_events_outbox" (sequence) WHERE dead_at IS NOT NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                   WHERE tgname = 'domain_events_outbox_notify' AND tgrelid = '"public"."domain_events_outbox"'::regclass) THEN
        CREATE TRIGGER "domain_events_outbox_notify" AFTER INSERT ON "public"."domain_events_outbox"
            FOR EACH STATEMENT EXECUTE FUNCTION "public"."domain_events_outbox_notify"();
    END IF;
END
$do$;
