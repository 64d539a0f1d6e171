-- Event data as `json` instead of `jsonb`.
--
-- The store never queries inside event data: it writes the JSON text an
-- event was made with and hands that text back to readers. `json` checks
-- the text and keeps it as written (key order and spacing included, as on
-- SQLite), where `jsonb` converted every event to its binary form on insert,
-- about a tenth of the insert's time, and back to text on every read. To
-- query data in SQL, cast it: `data::jsonb`.
--
-- Changing the type rewrites the table once, under an exclusive lock: on a
-- large log, plan for the pause (docs/operations.md).
ALTER TABLE events ALTER COLUMN data TYPE JSON USING data::json;

-- larder_append (migration 0002), inserting `json`.
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
    SELECT u.p, u.i, u.s, u.v, u.t, u.sv, u.d::json, u.te, u.st, u.et, u.ei, u.a, u.c, u.ca,
           in_recorded_at, u.se
      FROM UNNEST(in_positions, in_ids, in_streams, in_versions, in_types, in_schemas, in_data,
                  in_tenants, in_stores, in_entity_types, in_entity_ids, in_actors,
                  in_correlations, in_causations, in_sessions)
           AS u(p, i, s, v, t, sv, d, te, st, et, ei, a, c, ca, se);
    RETURN TRUE;
END;
$$;
