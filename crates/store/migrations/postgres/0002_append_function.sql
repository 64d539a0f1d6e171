-- Appends planned against what the writer already knows, in one statement.
--
-- The writer keeps the head after its last commit and the versions of the
-- streams it has seen, plans a batch against them, and calls this function
-- with the rows, in autocommit: the statement's own transaction takes the
-- append lock, checks that nothing moved since (the head, and each stream's
-- version), inserts, and commits when the statement ends. One round trip.
--
-- Under the lock a match means the log is exactly as planned against: the
-- positions head + 1 ... and the stream versions are the ones the slow path
-- would assign. A mismatch (another writer appended) inserts nothing and
-- returns false; the writer then reads a full snapshot and plans again. An
-- event id that is already stored (an idempotent retry planned as new) fails
-- the insert on `events_id_key`, and the writer also falls back.
--
-- The lock is the one every append takes (APPEND_LOCK_CLASS in sql.rs), held
-- until the statement's transaction commits, so positions still become
-- visible in order. The function lives in the store's schema and runs with
-- the search_path it was created with, so `current_schema()` (the second
-- lock key) and `events` are the store's own. Its statements keep one
-- generic plan each (the store's connections otherwise plan every statement
-- for its parameters): index probes and an insert, whatever the values.
CREATE OR REPLACE FUNCTION larder_append(
    expected_head   BIGINT,
    check_streams   TEXT[],
    check_versions  BIGINT[],
    in_positions    BIGINT[],
    in_ids          UUID[],
    in_streams      TEXT[],
    in_versions     BIGINT[],
    in_types        TEXT[],
    in_schemas      BIGINT[],
    in_data         TEXT[],
    in_tenants      TEXT[],
    in_stores       TEXT[],
    in_entity_types TEXT[],
    in_entity_ids   TEXT[],
    in_actors       TEXT[],
    in_correlations UUID[],
    in_causations   UUID[],
    in_recorded_at  TIMESTAMPTZ,
    in_sessions     TEXT[]
) RETURNS BOOLEAN
LANGUAGE plpgsql
SET search_path FROM CURRENT
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(4997458, hashtext(current_schema()));

    IF (SELECT COALESCE(MAX(e.position), 0) FROM events e) <> expected_head THEN
        RETURN FALSE;
    END IF;

    -- One probe of the (stream, version) index per stream.
    IF EXISTS (
        SELECT 1
          FROM unnest(check_streams, check_versions) AS k(name, known)
         WHERE (SELECT COALESCE(MAX(e.version), 0) FROM events e WHERE e.stream = k.name)
               <> k.known
    ) THEN
        RETURN FALSE;
    END IF;

    INSERT INTO events (position, id, stream, version, event_type, schema_version, data, tenant,
                        store_id, entity_type, entity_id, actor, correlation_id, causation_id,
                        recorded_at, session)
    SELECT u.p, u.i, u.s, u.v, u.t, u.sv, u.d::jsonb, u.te, u.st, u.et, u.ei, u.a, u.c, u.ca,
           in_recorded_at, u.se
      FROM UNNEST(in_positions, in_ids, in_streams, in_versions, in_types, in_schemas, in_data,
                  in_tenants, in_stores, in_entity_types, in_entity_ids, in_actors,
                  in_correlations, in_causations, in_sessions)
           AS u(p, i, s, v, t, sv, d, te, st, et, ei, a, c, ca, se);
    RETURN TRUE;
END;
$$;
