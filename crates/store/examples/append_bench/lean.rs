//! A lean append path straight through sqlx, on the store's own tables, with
//! what `docs/benchmarks.md` recommends for the store's writer:
//! - one connection held by the writer (the pool pings a connection on every
//!   acquire: one more round trip per commit);
//! - each stream's version read with a per-stream `MAX(version)`, which the
//!   index answers in O(log n), instead of `GROUP BY stream` (O(stream));
//! - PostgreSQL: `BEGIN` and the advisory lock in one round trip, and a
//!   custom plan for every snapshot (`plan_cache_mode = force_custom_plan`),
//!   so a generic plan made while the table was small (sequential scans)
//!   is never reused once it is large.
//!
//! It keeps the store's work otherwise: the write lock, one snapshot (head,
//! stream versions, stored ids), the version checks, the insert (in the
//! store's chunks on SQLite, one `UNNEST` on PostgreSQL) and the commit.
//! A commit carries one append from each of `writers` streams, as a group
//! commit of that many waiting appends does; commits run back to back, so
//! the rate is what one writer task could sustain.

use super::probe::{Ids, time_ordered_id};
use super::*;
use chrono::Utc;
use sqlx::QueryBuilder;

/// Appends in one emulated group commit: the store's writer gathered
/// 38 to 46 of the 64 waiting appends per commit in the benchmark.
pub const GROUP: usize = 40;

const COLUMNS: &str = "INSERT INTO events (position, id, stream, version, event_type, schema_version, data, \
     tenant, store_id, entity_type, entity_id, actor, session, correlation_id, causation_id, recorded_at) ";

/// One row to insert.
struct Row<'a> {
    position: i64,
    version: i64,
    stream: &'a str,
    event: &'a NewEvent,
    data: String,
}

/// `commits` commits of `size` events to each of `writers` streams:
/// (p50 ms per commit, events/s).
pub async fn commits(
    database: &Database,
    writers: usize,
    size: usize,
    commits: usize,
    ids: Ids,
) -> Result<(f64, f64)> {
    let mut streams: Vec<Writer> = (0..writers).map(|_| Writer::new()).collect();
    let work: Vec<Vec<Vec<NewEvent>>> = (0..commits)
        .map(|_| {
            streams
                .iter_mut()
                .map(|writer| {
                    let mut events = writer.events(size);
                    if ids == Ids::TimeOrdered {
                        for event in &mut events {
                            event.id = time_ordered_id();
                        }
                    }
                    events
                })
                .collect()
        })
        .collect();
    let mut latencies = Vec::with_capacity(commits);
    let started = Instant::now();
    match database {
        Database::Sqlite(pool) => {
            let mut conn = pool.acquire().await?;
            for events in &work {
                let t = Instant::now();
                sqlite_commit(&mut conn, &mut streams, events).await?;
                latencies.push(t.elapsed());
            }
        }
        Database::Postgres(pool) => {
            let mut conn = pool.acquire().await?;
            sqlx::query("SET plan_cache_mode = force_custom_plan")
                .execute(&mut *conn)
                .await?;
            for events in &work {
                let t = Instant::now();
                postgres_commit(&mut conn, &mut streams, events).await?;
                latencies.push(t.elapsed());
            }
            // The connection goes back to the store's pool.
            sqlx::query("RESET plan_cache_mode")
                .execute(&mut *conn)
                .await?;
        }
    }
    let rate = (commits * writers * size) as f64 / started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    Ok((latencies[latencies.len() / 2].as_secs_f64() * 1e3, rate))
}

/// Checks every stream's version and that no id is stored, and lays out
/// the rows after `head`.
fn plan<'a>(
    streams: &'a [Writer],
    events: &'a [Vec<NewEvent>],
    head: i64,
    versions: &[(String, i64)],
    stored: i64,
) -> Result<Vec<Row<'a>>> {
    if stored != 0 {
        bail!("{stored} event ids are already stored");
    }
    let mut position = head;
    let mut rows = Vec::new();
    for (writer, events) in streams.iter().zip(events) {
        let version = versions
            .iter()
            .find(|(stream, _)| *stream == writer.stream)
            .map_or(0, |(_, v)| *v);
        if version as u64 != writer.version {
            bail!(
                "{} is at {version}, expected {}",
                writer.stream,
                writer.version
            );
        }
        for (i, event) in events.iter().enumerate() {
            position += 1;
            rows.push(Row {
                position,
                version: version + 1 + i as i64,
                stream: &writer.stream,
                event,
                data: event.data.to_string(),
            });
        }
    }
    Ok(rows)
}

fn advance(streams: &mut [Writer], events: &[Vec<NewEvent>]) {
    for (writer, events) in streams.iter_mut().zip(events) {
        writer.version += events.len() as u64;
    }
}

async fn sqlite_commit(
    conn: &mut sqlx::SqliteConnection,
    streams: &mut [Writer],
    events: &[Vec<NewEvent>],
) -> Result<()> {
    let names = serde_json::to_string(&streams.iter().map(|w| &w.stream).collect::<Vec<_>>())?;
    let ids = serde_json::to_string(&events.iter().flatten().map(|e| e.id).collect::<Vec<_>>())?;
    let mut tx = sqlx::Connection::begin_with(&mut *conn, Database::SQLITE_BEGIN_WRITE).await?;
    // kind 0: how many ids are stored; 1: a stream's version; 2: head.
    let snapshot: Vec<(i64, Option<String>, i64)> = sqlx::query_as(
        "SELECT 0, NULL, (SELECT COUNT(*) FROM events WHERE id IN (SELECT value FROM json_each($2))) \
         UNION ALL SELECT 2, NULL, COALESCE((SELECT MAX(position) FROM events), 0) \
         UNION ALL SELECT 1, j.value, COALESCE((SELECT MAX(version) FROM events WHERE stream = j.value), 0) \
           FROM json_each($1) AS j",
    )
    .bind(names)
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?;
    let (head, stored, versions) = split(snapshot);
    let recorded_at = Utc::now();
    let rows = plan(streams, events, head, &versions, stored)?;
    let mut rest = &rows[..];
    while !rest.is_empty() {
        // The store's chunk sizes, so both prepare the same statements.
        let size = [256, 64, 16, 4, 1]
            .into_iter()
            .find(|s| *s <= rest.len())
            .unwrap_or(1);
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let mut insert = QueryBuilder::new(COLUMNS);
        insert.push_values(chunk, |mut values, row| {
            let e = row.event;
            values
                .push_bind(row.position)
                .push_bind(e.id.to_string())
                .push_bind(row.stream)
                .push_bind(row.version)
                .push_bind(&e.event_type)
                .push_bind(i64::from(e.schema_version))
                .push_bind(&row.data)
                .push_bind(&e.metadata.tenant)
                .push_bind(&e.metadata.store)
                .push_bind(&e.metadata.entity_type)
                .push_bind(&e.metadata.entity_id)
                .push_bind(&e.metadata.actor)
                .push_bind(&e.metadata.session)
                .push_bind(e.metadata.correlation_id.map(|id| id.to_string()))
                .push_bind(e.metadata.causation_id.map(|id| id.to_string()))
                .push_bind(recorded_at);
        });
        insert.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    advance(streams, events);
    Ok(())
}

async fn postgres_commit(
    conn: &mut sqlx::PgConnection,
    streams: &mut [Writer],
    events: &[Vec<NewEvent>],
) -> Result<()> {
    let names: Vec<&str> = streams.iter().map(|w| w.stream.as_str()).collect();
    let ids: Vec<Uuid> = events.iter().flatten().map(|e| e.id).collect();
    // The store's lock (class "LAR", keyed by schema), taken in the same
    // round trip as BEGIN: a simple query may hold several statements.
    let mut tx = sqlx::Connection::begin_with(
        &mut *conn,
        "BEGIN; SELECT pg_advisory_xact_lock(4997458, hashtext(current_schema()))",
    )
    .await?;
    // kind 0: how many ids are stored; 1: a stream's version; 2: head.
    let snapshot: Vec<(i64, Option<String>, i64)> = sqlx::query_as(
        "SELECT 0::bigint, NULL::text, (SELECT COUNT(*) FROM events WHERE id = ANY($2)) \
         UNION ALL SELECT 2, NULL, COALESCE((SELECT MAX(position) FROM events), 0)::bigint \
         UNION ALL SELECT 1, s, COALESCE((SELECT MAX(version) FROM events WHERE stream = s), 0)::bigint \
           FROM unnest($1::text[]) AS s",
    )
    .bind(&names)
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    let (head, stored, versions) = split(snapshot);
    let rows = plan(streams, events, head, &versions, stored)?;
    let column = |f: fn(&Row<'_>) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO events (position, id, stream, version, event_type, schema_version, data, tenant, store_id, \
                             entity_type, entity_id, actor, correlation_id, causation_id, recorded_at, session) \
         SELECT p, i, s, v, t, 1, d::json, te, st, et, ei, a, c, ca, $14, se \
           FROM UNNEST($1::bigint[], $2::uuid[], $3::text[], $4::bigint[], $5::text[], $6::text[], \
                       $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::uuid[], $13::uuid[], \
                       $15::text[]) \
                AS u(p, i, s, v, t, d, te, st, et, ei, a, c, ca, se)",
    )
    .bind(rows.iter().map(|r| r.position).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.event.id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.stream).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.version).collect::<Vec<_>>())
    .bind(column(|r| Some(r.event.event_type.clone())))
    .bind(rows.iter().map(|r| r.data.as_str()).collect::<Vec<_>>())
    .bind(column(|r| Some(r.event.metadata.tenant.clone())))
    .bind(column(|r| r.event.metadata.store.clone()))
    .bind(column(|r| Some(r.event.metadata.entity_type.clone())))
    .bind(column(|r| Some(r.event.metadata.entity_id.clone())))
    .bind(column(|r| r.event.metadata.actor.clone()))
    .bind(rows.iter().map(|r| r.event.metadata.correlation_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.event.metadata.causation_id).collect::<Vec<_>>())
    .bind(Utc::now())
    .bind(column(|r| r.event.metadata.session.clone()))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    advance(streams, events);
    Ok(())
}

/// (head, stored id count, stream versions) from the snapshot rows.
fn split(rows: Vec<(i64, Option<String>, i64)>) -> (i64, i64, Vec<(String, i64)>) {
    let (mut head, mut stored, mut versions) = (0, 0, Vec::new());
    for (kind, stream, value) in rows {
        match (kind, stream) {
            (0, _) => stored = value,
            (2, _) => head = value,
            (_, Some(stream)) => versions.push((stream, value)),
            _ => {}
        }
    }
    (head, stored, versions)
}
