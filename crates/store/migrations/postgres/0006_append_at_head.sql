-- larder_append_at: larder_append (migrations 0002 and 0004) without the
-- head check.
--
-- larder_append refuses a batch when the head moved since the writer last
-- saw it. With one node that is rare; with several nodes on one database
-- the head moves with every other node's append, so nearly every batch
-- fell back to the four-round-trip transaction, holding the append lock
-- for all four. This function checks only the versions of the batch's
-- streams, under the same lock, and places the batch right after the
-- head it finds there: the rows' positions are planned after
-- `planned_head` and moved by the difference. It returns the head it found
-- (the batch's first position is one past it), or -1 when a stream's
-- version is not the one checked (nothing inserted).
--
-- larder_append stays for nodes of an earlier release during a rolling
-- upgrade; both take the one append lock.
CREATE OR REPLACE FUNCTION larder_append_at(
    planned_head    BIGINT,
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
) RETURNS BIGINT
LANGUAGE plpgsql
SET search_path FROM CURRENT
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    head BIGINT;
BEGIN
    PERFORM pg_advisory_xact_lock(4997458, hashtext(current_schema()));

    -- One probe of the (stream, version) index per stream.
    IF EXISTS (
        SELECT 1
          FROM unnest(check_streams, check_versions) AS k(name, known)
         WHERE (SELECT COALESCE(MAX(e.version), 0) FROM events e WHERE e.stream = k.name)
               <> k.known
    ) THEN
        RETURN -1;
    END IF;

    SELECT COALESCE(MAX(e.position), 0) INTO head FROM events e;

    INSERT INTO events (position, id, stream, version, event_type, schema_version, data, tenant,
                        store_id, entity_type, entity_id, actor, correlation_id, causation_id,
                        recorded_at, session)
    SELECT u.p - planned_head + head, u.i, u.s, u.v, u.t, u.sv, u.d::json, u.te, u.st, u.et, u.ei,
           u.a, u.c, u.ca, in_recorded_at, u.se
      FROM UNNEST(in_positions, in_ids, in_streams, in_versions, in_types, in_schemas, in_data,
                  in_tenants, in_stores, in_entity_types, in_entity_ids, in_actors,
                  in_correlations, in_causations, in_sessions)
           AS u(p, i, s, v, t, sv, d, te, st, et, ei, a, c, ca, se);
    RETURN head;
END;
$$;
