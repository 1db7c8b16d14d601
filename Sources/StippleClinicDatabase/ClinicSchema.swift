/// The clinic database's schema, version 1: the one source of it (docs/fleet.md shows it in
/// prose). `stipplectl clinic schema` prints it for `psql`; the database owner installs it once.
/// Every rule a workstation cannot be trusted to keep is here, in the database: the chain check
/// of each shipped entry, the exclusion constraint over a client's sessions, the cartridge key,
/// row-level security.
public enum ClinicSchema {
    public static let version = 1

    public static let sql = #"""
-- Stipple's clinic records, schema version 1 (docs/fleet.md). Run once by the database owner:
--   stipplectl clinic schema | psql -v ON_ERROR_STOP=1 -d stipple
-- Everything a workstation may do goes through the grants below: it inserts its own audit
-- entries (row-level security) and calls the claim functions; it cannot update or delete a row.
BEGIN;
-- The chain's hashes are over UTF-8 text: a database in another encoding would refuse honest entries.
DO $encoding$ BEGIN
    IF (SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()) <> 'UTF8' THEN
        RAISE EXCEPTION 'the clinic database must be UTF8 (createdb -E UTF8 -T template0 stipple)';
    END IF;
END $encoding$;
CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE SCHEMA stipple;

DO $roles$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'stipple_workstation') THEN
        CREATE ROLE stipple_workstation NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'stipple_reader') THEN
        CREATE ROLE stipple_reader NOLOGIN;
    END IF;
END $roles$;

CREATE TABLE stipple.meta (key text PRIMARY KEY, value text NOT NULL);
INSERT INTO stipple.meta VALUES ('schema_version', '1');

-- One row per workstation (its login role's name): the head of its chain as confirmed here, and
-- what it last said of its own head (the lag).
CREATE TABLE stipple.workstations (
    name text PRIMARY KEY,
    first_contact timestamptz NOT NULL DEFAULT now(),
    last_contact timestamptz NOT NULL DEFAULT now(),
    -- The contact before the last: after an outage, the moment the workstation was last heard of
    -- before it (a late claim's start is never believed earlier than that).
    previous_contact timestamptz NOT NULL DEFAULT now(),
    confirmed_seq bigint NOT NULL DEFAULT 0,
    confirmed_hash text NOT NULL DEFAULT repeat('0', 64),
    confirmed_at timestamptz,
    -- A test rig's workstation on the simulator's accelerated clock: only then are the times it
    -- sends believed (set by the database owner, never by the workstation).
    simulated_clock boolean NOT NULL DEFAULT false,
    local_head_seq bigint NOT NULL DEFAULT 0,
    oldest_unshipped_at timestamptz,
    -- Entries purged for retention: the chain continues from the head above, so nothing a
    -- workstation ships later depends on a purged row.
    purged_through_seq bigint NOT NULL DEFAULT 0
);

-- The workstations' audit chains, entry for entry as each workstation's SQLite holds them.
CREATE TABLE stipple.audit_entries (
    workstation text NOT NULL DEFAULT current_user REFERENCES stipple.workstations (name),
    seq bigint NOT NULL CHECK (seq >= 1),
    at bigint NOT NULL,
    actor text NOT NULL,
    kind text NOT NULL,
    session_id text,
    payload text NOT NULL,
    prev_hash text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    hash text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
    details jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workstation, seq)
);
CREATE INDEX audit_entries_by_session ON stipple.audit_entries (workstation, session_id);
CREATE INDEX audit_entries_by_kind ON stipple.audit_entries (kind, at);

-- A client's sessions: each holds [start, end + gap) (while open: start + 4 h + gap), and no
-- two of one client's may overlap: never concurrent, and the gap apart, clinic-wide.
CREATE TABLE stipple.session_claims (
    workstation text NOT NULL,
    session_id text NOT NULL,
    client_id text NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at timestamptz,
    max_length interval NOT NULL,
    gap interval NOT NULL,
    span tstzrange NOT NULL CHECK (NOT isempty(span)),
    gap_override_reason text,
    simulated_time boolean NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workstation, session_id),
    CONSTRAINT one_client_session_per_gap EXCLUDE USING gist (client_id WITH =, span WITH &&)
);

-- A cartridge is used once in the whole clinic.
CREATE TABLE stipple.cartridge_claims (
    cartridge_id text PRIMARY KEY,
    workstation text NOT NULL,
    session_id text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now()
);

-- Conflicts found when a claim made offline (policy allow-with-override) reached the database:
-- flagged for a person, never resolved silently.
CREATE TABLE stipple.review_items (
    id bigserial PRIMARY KEY,
    workstation text NOT NULL,
    session_id text NOT NULL,
    kind text NOT NULL,
    detail text NOT NULL,
    override_reason text,
    found_at timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    resolved_by text,
    resolution text
);

-- The workstation calling: its login role, which must be a member of stipple_workstation.
CREATE FUNCTION stipple.caller() RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT pg_has_role(session_user, 'stipple_workstation', 'MEMBER') THEN
        RAISE EXCEPTION 'role % is not a Stipple workstation (GRANT stipple_workstation TO %)', session_user, session_user
            USING ERRCODE = '42501';
    END IF;
    RETURN session_user;
END $$;

-- A workstation's first call on each connection: registers it, and answers the head of its
-- chain as confirmed here (what it has shipped).
CREATE FUNCTION stipple.hello(p_local_head bigint, p_oldest_unshipped bigint)
RETURNS TABLE (confirmed_seq bigint, confirmed_hash text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, stipple, pg_temp AS $$
DECLARE ws text := stipple.caller();
BEGIN
    INSERT INTO stipple.workstations (name) VALUES (ws) ON CONFLICT (name) DO NOTHING;
    -- previous_contact moves only across a silence of more than a minute (an outage): retries
    -- after it, every 30 s at most, leave it at the last contact before the outage.
    UPDATE stipple.workstations w SET previous_contact = CASE WHEN now() - w.last_contact > interval '60 seconds'
                                                              THEN w.last_contact ELSE w.previous_contact END,
        last_contact = now(), local_head_seq = greatest(p_local_head, 0),
        oldest_unshipped_at = CASE WHEN p_oldest_unshipped IS NULL THEN NULL ELSE to_timestamp(p_oldest_unshipped) END
        WHERE w.name = ws;
    RETURN QUERY SELECT w.confirmed_seq, w.confirmed_hash FROM stipple.workstations w WHERE w.name = ws;
END $$;

-- The central check of the chain, in the database so that no client can skip it: each entry
-- must follow the workstation's confirmed head (its seq next, its prev_hash that head's hash),
-- and its hash must be the SHA-256 of its canonical form (AuditEntry.canonicalForm). An entry
-- already confirmed is skipped when it is the same entry (shipping is at least once), and
-- refused loudly when it differs.
CREATE FUNCTION stipple.check_audit_entry() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, stipple, pg_temp AS $$
DECLARE
    head stipple.workstations%ROWTYPE;
    existing text;
    computed text;
BEGIN
    -- Before any lock: another workstation's name never touches that workstation's head.
    IF NEW.workstation IS DISTINCT FROM stipple.caller() THEN
        RAISE EXCEPTION 'workstation % may insert only its own entries, not those of %', session_user, NEW.workstation USING ERRCODE = '42501';
    END IF;
    SELECT * INTO head FROM stipple.workstations WHERE name = NEW.workstation FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'workstation % is not registered (call stipple.hello first)', NEW.workstation USING ERRCODE = '23503';
    END IF;
    computed := encode(sha256(convert_to(concat_ws(E'\n', NEW.prev_hash, NEW.seq::text, NEW.at::text, NEW.actor, NEW.kind,
                                                   coalesce(NEW.session_id, ''), NEW.payload), 'UTF8')), 'hex');
    IF NEW.seq <= head.confirmed_seq THEN
        SELECT hash INTO existing FROM stipple.audit_entries WHERE workstation = NEW.workstation AND seq = NEW.seq;
        IF existing = NEW.hash OR (existing IS NULL AND NEW.seq <= head.purged_through_seq) THEN
            RETURN NULL;
        END IF;
        RAISE EXCEPTION 'audit chain of % forked at entry %: it differs from the entry confirmed before', NEW.workstation, NEW.seq
            USING ERRCODE = 'SC001';
    END IF;
    IF NEW.seq <> head.confirmed_seq + 1 THEN
        RAISE EXCEPTION 'audit chain of %: entry % arrived, entry % was expected (entries are missing)', NEW.workstation, NEW.seq, head.confirmed_seq + 1
            USING ERRCODE = 'SC002';
    END IF;
    IF NEW.prev_hash <> head.confirmed_hash THEN
        RAISE EXCEPTION 'audit chain of % broken at entry %: it does not follow entry % (previous hash differs)', NEW.workstation, NEW.seq, head.confirmed_seq
            USING ERRCODE = 'SC003';
    END IF;
    IF computed <> NEW.hash THEN
        RAISE EXCEPTION 'audit chain of % broken at entry %: it was altered (its hash does not match its content)', NEW.workstation, NEW.seq
            USING ERRCODE = 'SC004';
    END IF;
    -- The payload as jsonb for the views; a payload jsonb cannot hold (a \u0000 escape) is kept
    -- as text inside it rather than blocking the chain.
    BEGIN
        NEW.details := NEW.payload::jsonb;
    EXCEPTION WHEN others THEN
        NEW.details := jsonb_build_object('unparsed_payload', NEW.payload);
    END;
    NEW.received_at := clock_timestamp();
    UPDATE stipple.workstations SET confirmed_seq = NEW.seq, confirmed_hash = NEW.hash, confirmed_at = now(), last_contact = now(),
        oldest_unshipped_at = CASE WHEN NEW.seq >= local_head_seq THEN NULL ELSE oldest_unshipped_at END
        WHERE name = NEW.workstation;
    -- A session's close ends its claim: the client's gap runs from the end the database saw.
    IF NEW.kind = 'session_closed' AND NEW.session_id IS NOT NULL THEN
        UPDATE stipple.session_claims c
            SET ended_at = least(greatest(CASE WHEN c.simulated_time THEN to_timestamp(NEW.at) ELSE now() END, c.started_at),
                                 c.started_at + c.max_length),
                span = tstzrange(lower(c.span),
                                 greatest(lower(c.span) + interval '1 microsecond',
                                          least(greatest(CASE WHEN c.simulated_time THEN to_timestamp(NEW.at) ELSE now() END, c.started_at),
                                                c.started_at + c.max_length) + c.gap))
            WHERE c.workstation = NEW.workstation AND c.session_id = NEW.session_id AND c.ended_at IS NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER check_audit_entry BEFORE INSERT ON stipple.audit_entries FOR EACH ROW EXECUTE FUNCTION stipple.check_audit_entry();

CREATE FUNCTION stipple.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('stipple.purging', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused (retention: stipple.purge_before)', TG_TABLE_NAME, TG_OP USING ERRCODE = '42501';
END $$;
CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON stipple.audit_entries
    FOR EACH ROW EXECUTE FUNCTION stipple.refuse_change();
CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON stipple.audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION stipple.refuse_change();

-- Claims a client for a new session, decided here with the database's clock (or, from a
-- simulator's accelerated clock only, the time the workstation sends). Answers ok, or why not in
-- plain words. Idempotent for the same session. A gap override (a recorded reason) lets the
-- session start inside the gap, clinic-wide; nothing lets two sessions of a client overlap.
CREATE FUNCTION stipple.claim_session(p_session text, p_client text, p_gap_seconds bigint, p_max_seconds bigint,
                                      p_override_reason text, p_simulated_at bigint)
RETURNS TABLE (ok boolean, reason text, next_allowed timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, stipple, pg_temp AS $$
DECLARE
    ws text := stipple.caller();
    v_t timestamptz := CASE WHEN p_simulated_at IS NULL THEN now() ELSE to_timestamp(p_simulated_at) END;
    v_gap interval := make_interval(secs => p_gap_seconds);
    v_max interval := make_interval(secs => p_max_seconds);
    override text := nullif(btrim(coalesce(p_override_reason, '')), '');
    mine stipple.session_claims%ROWTYPE;
    other stipple.session_claims%ROWTYPE;
    low timestamptz;
BEGIN
    IF p_gap_seconds IS NULL OR p_gap_seconds < 0 OR p_max_seconds IS NULL OR p_max_seconds <= 0 THEN
        RAISE EXCEPTION 'gap % s and session length % s: both must be positive', p_gap_seconds, p_max_seconds USING ERRCODE = '22023';
    END IF;
    -- The database's clock decides, unless the owner marked this workstation a test rig.
    IF p_simulated_at IS NOT NULL AND NOT coalesce((SELECT w.simulated_clock FROM stipple.workstations w WHERE w.name = ws), false) THEN
        RAISE EXCEPTION 'workstation % sent a simulated time, but it is not marked as a test rig on the simulator''s clock (stipple.workstations.simulated_clock): its claims use the database''s time', ws
            USING ERRCODE = '42501';
    END IF;
    -- Locked: a sweep deleting this claim at the same moment either waits for the re-grant below
    -- (and then finds it young) or goes first (and this finds nothing and claims afresh).
    SELECT * INTO mine FROM stipple.session_claims c WHERE c.workstation = ws AND c.session_id = p_session FOR UPDATE;
    IF FOUND THEN
        IF mine.client_id = p_client THEN
            -- Granted again: young again, so the sweep of unopened claims leaves it while it opens.
            UPDATE stipple.session_claims c SET claimed_at = now() WHERE c.workstation = ws AND c.session_id = p_session;
            RETURN QUERY SELECT true, NULL::text, NULL::timestamptz;
        ELSE
            RETURN QUERY SELECT false, format('session id %s was already claimed here for another client', p_session), NULL::timestamptz;
        END IF;
        RETURN;
    END IF;
    -- Serialises claims for one client (the exclusion constraint alone would answer a race with
    -- an error instead of the reason).
    PERFORM pg_advisory_xact_lock(hashtext('stipple.client:' || p_client));
    -- Running elsewhere (or never closed, and not yet past the longest a session can run).
    SELECT * INTO other FROM stipple.session_claims c
        WHERE c.client_id = p_client AND c.ended_at IS NULL AND c.started_at <= v_t + v_max AND c.started_at + c.max_length > v_t
        ORDER BY c.started_at DESC LIMIT 1;
    IF FOUND THEN
        RETURN QUERY SELECT false,
            format('client %s has a session open at workstation %s (session %s, started %s); a client never has two sessions at once',
                   p_client, other.workstation, other.session_id, to_char(other.started_at, 'YYYY-MM-DD HH24:MI TZ')),
            upper(other.span);
        RETURN;
    END IF;
    low := v_t;
    SELECT * INTO other FROM stipple.session_claims c
        WHERE c.client_id = p_client AND c.span && tstzrange(v_t, v_t + v_max + v_gap)
        ORDER BY upper(c.span) DESC LIMIT 1;
    IF FOUND THEN
        IF override IS NULL THEN
            RETURN QUERY SELECT false,
                format('client %s had a session at workstation %s that ended %s; sessions must be %s days apart, so the next may start %s (or give a gap override reason)',
                       p_client, other.workstation, to_char(coalesce(other.ended_at, other.started_at + other.max_length), 'YYYY-MM-DD HH24:MI TZ'),
                       round(extract(epoch FROM v_gap) / 86400.0, 1), to_char(upper(other.span), 'YYYY-MM-DD HH24:MI TZ')),
                upper(other.span);
            RETURN;
        END IF;
        low := upper(other.span);
    END IF;
    INSERT INTO stipple.session_claims (workstation, session_id, client_id, started_at, max_length, gap, span,
                                        gap_override_reason, simulated_time)
        -- An override inside a longer gap of another workstation's site: the new span is a mark at
        -- the end of that gap, which still blocks the client until then.
        VALUES (ws, p_session, p_client, v_t, v_max, v_gap, tstzrange(low, greatest(low + interval '1 microsecond', v_t + v_max + v_gap)),
                override, p_simulated_at IS NOT NULL);
    RETURN QUERY SELECT true, NULL::text, NULL::timestamptz;
EXCEPTION WHEN exclusion_violation THEN
    RETURN QUERY SELECT false, format('client %s was claimed by another workstation at the same moment; try again', p_client), NULL::timestamptz;
END $$;

-- Claims a cartridge for a session: once in the whole clinic. Idempotent for the same session.
CREATE FUNCTION stipple.claim_cartridge(p_cartridge text, p_session text)
RETURNS TABLE (ok boolean, reason text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, stipple, pg_temp AS $$
DECLARE
    ws text := stipple.caller();
    owner stipple.cartridge_claims%ROWTYPE;
BEGIN
    INSERT INTO stipple.cartridge_claims (cartridge_id, workstation, session_id) VALUES (p_cartridge, ws, p_session)
        ON CONFLICT (cartridge_id) DO NOTHING;
    SELECT * INTO owner FROM stipple.cartridge_claims c WHERE c.cartridge_id = p_cartridge;
    IF owner.workstation = ws AND owner.session_id = p_session THEN
        RETURN QUERY SELECT true, NULL::text;
    ELSE
        RETURN QUERY SELECT false, format('cartridge %s was already used at workstation %s in session %s (%s); cartridges are single-use',
                                          p_cartridge, owner.workstation, owner.session_id, to_char(owner.claimed_at, 'YYYY-MM-DD HH24:MI TZ'));
    END IF;
END $$;

-- Gives back what a session claimed when the workstation did not open it after all (its own
-- rules refused it): only a session that never reached the audit chain here.
CREATE FUNCTION stipple.release_session(p_session text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, stipple, pg_temp AS $$
DECLARE ws text := stipple.caller();
BEGIN
    IF EXISTS (SELECT 1 FROM stipple.audit_entries e WHERE e.workstation = ws AND e.session_id = p_session) THEN
        RETURN false;
    END IF;
    DELETE FROM stipple.session_claims c WHERE c.workstation = ws AND c.session_id = p_session;
    DELETE FROM stipple.cartridge_claims c WHERE c.workstation = ws AND c.session_id = p_session;
    RETURN true;
END $$;

-- This workstation's session claims that are older than a few minutes and whose session never
-- reached the chain here: the shipper gives back those its own records do not hold (a claim
-- committed after the workstation stopped waiting for it).
CREATE FUNCTION stipple.unopened_claims()
RETURNS TABLE (session_id text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, stipple, pg_temp AS $$
DECLARE ws text := stipple.caller();
BEGIN
    RETURN QUERY SELECT c.session_id FROM stipple.session_claims c
        WHERE c.workstation = ws AND c.claimed_at < now() - interval '5 minutes' AND c.ended_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM stipple.audit_entries e WHERE e.workstation = ws AND e.session_id = c.session_id);
END $$;

-- The sweep's release: checked and deleted in one statement, so a claim granted again meanwhile
-- (younger than the grace) stays.
CREATE FUNCTION stipple.release_unopened(p_session text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, stipple, pg_temp AS $$
DECLARE ws text := stipple.caller();
BEGIN
    DELETE FROM stipple.session_claims c
        WHERE c.workstation = ws AND c.session_id = p_session AND c.claimed_at < now() - interval '5 minutes' AND c.ended_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM stipple.audit_entries e WHERE e.workstation = ws AND e.session_id = p_session);
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    DELETE FROM stipple.cartridge_claims c WHERE c.workstation = ws AND c.session_id = p_session;
    RETURN true;
END $$;

-- Cartridges this workstation claimed for sessions that have closed without using them (no
-- `cartridge_used` entry: the needle never ran with them), given back — as the workstation's own
-- ledger, which binds a cartridge only when the needle is armed with it. Entries ship in order,
-- so a closed session's uses are all here.
CREATE FUNCTION stipple.release_unused_cartridges() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, stipple, pg_temp AS $$
DECLARE
    ws text := stipple.caller();
    released bigint;
BEGIN
    WITH gone AS (
        DELETE FROM stipple.cartridge_claims c
            WHERE c.workstation = ws
              AND EXISTS (SELECT 1 FROM stipple.audit_entries e WHERE e.workstation = ws AND e.session_id = c.session_id
                          AND e.kind = 'session_closed')
              AND NOT EXISTS (SELECT 1 FROM stipple.audit_entries e WHERE e.workstation = ws AND e.kind = 'cartridge_used'
                              AND e.details ->> 'cartridge_id' = c.cartridge_id)
            RETURNING 1)
    SELECT count(*) INTO released FROM gone;
    RETURN released;
END $$;

-- Gives back a cartridge claimed for a session whose workstation then refused to set it; never
-- one the chain shows used.
CREATE FUNCTION stipple.release_cartridge(p_cartridge text, p_session text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, stipple, pg_temp AS $$
DECLARE ws text := stipple.caller();
BEGIN
    IF EXISTS (SELECT 1 FROM stipple.audit_entries e WHERE e.workstation = ws AND e.kind = 'cartridge_used'
               AND e.details ->> 'cartridge_id' = p_cartridge) THEN
        RETURN false;
    END IF;
    DELETE FROM stipple.cartridge_claims c WHERE c.cartridge_id = p_cartridge AND c.workstation = ws AND c.session_id = p_session;
    RETURN FOUND;
END $$;

-- A claim made late (the workstation was offline and its policy is allow-with-override, with an
-- engineer's reason): recorded at the session's own start time; a conflict becomes a review item.
CREATE FUNCTION stipple.claim_late(p_session text, p_client text, p_cartridge text, p_started_at bigint,
                                   p_gap_seconds bigint, p_max_seconds bigint, p_offline_reason text)
RETURNS TABLE (ok boolean, reason text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, stipple, pg_temp AS $$
DECLARE
    ws text := stipple.caller();
    v_t timestamptz := to_timestamp(p_started_at);
    v_gap interval := make_interval(secs => p_gap_seconds);
    v_max interval := make_interval(secs => p_max_seconds);
    other stipple.session_claims%ROWTYPE;
    problems text := '';
    low timestamptz := to_timestamp(p_started_at);
BEGIN
    IF EXISTS (SELECT 1 FROM stipple.session_claims c WHERE c.workstation = ws AND c.session_id = p_session) THEN
        RETURN QUERY SELECT true, NULL::text;
        RETURN;
    END IF;
    -- A late claim's start is the workstation's word, so it is held between what the database
    -- knows: not after now, not before the workstation was last heard of before the outage. A
    -- start outside those bounds (a workstation clock off) is moved into them and flagged.
    IF NOT coalesce((SELECT w.simulated_clock FROM stipple.workstations w WHERE w.name = ws), false) THEN
        SELECT greatest(least(v_t, now()), least(w.previous_contact, now())) INTO v_t FROM stipple.workstations w WHERE w.name = ws;
        v_t := coalesce(v_t, least(to_timestamp(p_started_at), now()));
        IF abs(extract(epoch FROM v_t - to_timestamp(p_started_at))) > 300 THEN
            problems := format('the workstation''s clock put the session''s start at %s, outside what the database saw (taken as %s); ',
                               to_char(to_timestamp(p_started_at), 'YYYY-MM-DD HH24:MI TZ'), to_char(v_t, 'YYYY-MM-DD HH24:MI TZ'));
        END IF;
        low := v_t;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('stipple.client:' || p_client));
    FOR other IN SELECT * FROM stipple.session_claims c
                 WHERE c.client_id = p_client AND c.span && tstzrange(v_t, v_t + v_max + v_gap) ORDER BY upper(c.span) LOOP
        problems := problems || format('client %s: session %s at workstation %s (started %s) is within the gap or overlaps; ',
                                       p_client, other.session_id, other.workstation, to_char(other.started_at, 'YYYY-MM-DD HH24:MI TZ'));
        low := greatest(low, upper(other.span));
    END LOOP;
    IF low >= v_t + v_max + v_gap THEN
        low := v_t + v_max + v_gap - interval '1 microsecond';
    END IF;
    BEGIN
        INSERT INTO stipple.session_claims (workstation, session_id, client_id, started_at, max_length, gap, span,
                                            gap_override_reason, simulated_time)
            VALUES (ws, p_session, p_client, v_t, v_max, v_gap, tstzrange(low, v_t + v_max + v_gap),
                    'offline: ' || p_offline_reason,
                    coalesce((SELECT w.simulated_clock FROM stipple.workstations w WHERE w.name = ws), false));
    EXCEPTION WHEN exclusion_violation THEN
        problems := problems || 'the session overlaps a later claim and could not be recorded as a claim; ';
    END;
    IF p_cartridge IS NOT NULL THEN
        INSERT INTO stipple.cartridge_claims (cartridge_id, workstation, session_id) VALUES (p_cartridge, ws, p_session)
            ON CONFLICT (cartridge_id) DO NOTHING;
        IF NOT EXISTS (SELECT 1 FROM stipple.cartridge_claims c WHERE c.cartridge_id = p_cartridge AND c.workstation = ws AND c.session_id = p_session) THEN
            problems := problems || format('cartridge %s was already used elsewhere; ', p_cartridge);
        END IF;
    END IF;
    IF problems <> '' THEN
        INSERT INTO stipple.review_items (workstation, session_id, kind, detail, override_reason)
            VALUES (ws, p_session, 'offline_claim_conflict', rtrim(problems, '; '), p_offline_reason);
        RETURN QUERY SELECT false, rtrim(problems, '; ');
        RETURN;
    END IF;
    RETURN QUERY SELECT true, NULL::text;
END $$;

-- A cartridge use shipped after the fact (the use was recorded while the database could not be
-- reached): claimed now; a conflict becomes a review item, never resolved silently.
CREATE FUNCTION stipple.claim_cartridge_late(p_cartridge text, p_session text)
RETURNS TABLE (ok boolean, reason text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, stipple, pg_temp AS $$
DECLARE
    ws text := stipple.caller();
    answer record;
BEGIN
    SELECT * INTO answer FROM stipple.claim_cartridge(p_cartridge, p_session);
    IF NOT answer.ok AND NOT EXISTS (SELECT 1 FROM stipple.review_items r WHERE r.workstation = ws AND r.session_id = p_session
                                     AND r.kind = 'cartridge_reused' AND r.detail = answer.reason) THEN
        INSERT INTO stipple.review_items (workstation, session_id, kind, detail)
            VALUES (ws, p_session, 'cartridge_reused', answer.reason);
    END IF;
    RETURN QUERY SELECT answer.ok, answer.reason;
END $$;

-- Retention (2-5 years by local rules): removes entries and claims older than p_before. Each
-- workstation's confirmed head stays in stipple.workstations, so later entries still link.
CREATE FUNCTION stipple.purge_before(p_before timestamptz) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE removed bigint;
BEGIN
    PERFORM set_config('stipple.purging', 'on', true);
    -- By date, by both clocks (the workstation's and the database's receipt): an entry a
    -- workstation dated wrongly is not purged before its time.
    WITH gone AS (
        DELETE FROM stipple.audit_entries e WHERE to_timestamp(e.at) < p_before AND e.received_at < p_before
            RETURNING e.workstation, e.seq),
    highest AS (SELECT g.workstation, max(g.seq) AS seq, count(*) AS n FROM gone g GROUP BY g.workstation),
    marked AS (
        UPDATE stipple.workstations w SET purged_through_seq = greatest(w.purged_through_seq, h.seq)
            FROM highest h WHERE w.name = h.workstation RETURNING h.n)
    SELECT coalesce(sum(n), 0) INTO removed FROM marked;
    DELETE FROM stipple.session_claims c WHERE upper(c.span) < p_before;
    PERFORM set_config('stipple.purging', 'off', true);
    RETURN removed;
END $$;

-- Reporting views (docs/fleet.md): sessions across chairs, who used which lot, each
-- workstation's lag.
CREATE VIEW stipple.sessions AS
SELECT o.workstation, o.session_id, coalesce(k.client_id, o.details ->> 'client_id') AS client_id, o.details ->> 'technician' AS technician,
       o.details ->> 'zone' AS zone, o.details ->> 'pen_serial' AS pen_serial, o.details ->> 'cartridge_id' AS cartridge_id,
       string_to_array(o.details ->> 'pigment_lots', ',') AS pigment_lots, o.details ->> 'gap_override_reason' AS gap_override_reason,
       to_timestamp(o.at) AS opened_at, to_timestamp(c.at) AS closed_at, c.details ->> 'reason' AS close_reason
FROM stipple.audit_entries o
LEFT JOIN LATERAL (SELECT * FROM stipple.audit_entries x WHERE x.workstation = o.workstation AND x.session_id = o.session_id
                   AND x.kind = 'session_closed' ORDER BY x.seq LIMIT 1) c ON true
LEFT JOIN stipple.session_claims k ON k.workstation = o.workstation AND k.session_id = o.session_id
WHERE o.kind = 'session_opened';

CREATE VIEW stipple.lot_uses AS
SELECT s.workstation, s.session_id, s.client_id, 'pigment' AS material, btrim(lot) AS lot, s.opened_at AS used_at
FROM stipple.sessions s, unnest(s.pigment_lots) AS lot
UNION ALL
SELECT e.workstation, e.session_id, s.client_id, 'cartridge', e.details ->> 'lot', to_timestamp(e.at)
FROM stipple.audit_entries e JOIN stipple.sessions s USING (workstation, session_id)
WHERE e.kind = 'cartridge_used' AND coalesce(e.details ->> 'lot', '') <> '';

CREATE VIEW stipple.workstation_status AS
SELECT w.name AS workstation, w.first_contact, w.last_contact, w.confirmed_seq, w.local_head_seq,
       greatest(w.local_head_seq - w.confirmed_seq, 0) AS backlog_entries,
       CASE WHEN w.oldest_unshipped_at IS NULL THEN interval '0' ELSE now() - w.oldest_unshipped_at END AS lag,
       (SELECT count(*) FROM stipple.review_items r WHERE r.workstation = w.name AND r.resolved_at IS NULL) AS open_review_items
FROM stipple.workstations w;

-- Row-level security: a workstation inserts and reads only its own entries.
ALTER TABLE stipple.audit_entries ENABLE ROW LEVEL SECURITY;
CREATE POLICY workstation_inserts_own ON stipple.audit_entries FOR INSERT TO stipple_workstation
    WITH CHECK (workstation = current_user);
CREATE POLICY workstation_reads_own ON stipple.audit_entries FOR SELECT TO stipple_workstation
    USING (workstation = current_user);
CREATE POLICY reader_reads_all ON stipple.audit_entries FOR SELECT TO stipple_reader USING (true);

REVOKE ALL ON ALL TABLES IN SCHEMA stipple FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA stipple FROM PUBLIC;
GRANT USAGE ON SCHEMA stipple TO stipple_workstation, stipple_reader;
GRANT INSERT (workstation, seq, at, actor, kind, session_id, payload, prev_hash, hash, details) ON stipple.audit_entries TO stipple_workstation;
GRANT SELECT ON stipple.audit_entries TO stipple_workstation;
GRANT SELECT ON stipple.workstations, stipple.workstation_status TO stipple_workstation;
GRANT EXECUTE ON FUNCTION stipple.caller(), stipple.hello(bigint, bigint), stipple.claim_session(text, text, bigint, bigint, text, bigint),
    stipple.claim_cartridge(text, text), stipple.release_session(text),
    stipple.claim_late(text, text, text, bigint, bigint, bigint, text), stipple.claim_cartridge_late(text, text),
    stipple.unopened_claims(), stipple.release_unopened(text), stipple.release_cartridge(text, text),
    stipple.release_unused_cartridges() TO stipple_workstation;
GRANT SELECT ON ALL TABLES IN SCHEMA stipple TO stipple_reader;
COMMIT;
"""#
}
