//! Diagnostics for the append path (`--probe`): where an append's time goes.
//!
//! - the cost of one database round trip through sqlx (with and without the
//!   pool's acquire, which pings the connection first);
//! - single-event and 100-event appends on short streams (a new stream
//!   each time) against the same on a stream that already holds
//!   `LONG_STREAM` events, to separate a per-append fixed cost from one that
//!   grows with the stream;
//! - the writer's snapshot query for one long stream as the store writes it
//!   (`GROUP BY stream`) against a per-stream `MAX(version)` lookup.

use super::*;

const LONG_STREAM: usize = 20_000;
const ROUND_TRIPS: usize = 2_000;
const APPENDS: usize = 1_000;
const BATCHES: usize = 100;

pub async fn run(store: &SqlEventStore, backend: Backend) -> Result<()> {
    let name = backend.name();
    let line = |what: &str, value: String| println!("{name:<9} {what:<62} {value}");

    let (pool_rt, conn_rt) = round_trips(&store.database()).await?;
    line(
        "SELECT 1 through the pool (acquire + ping + query), us",
        format!("{pool_rt:.1}"),
    );
    line("SELECT 1 on a held connection, us", format!("{conn_rt:.1}"));

    warm_up(store).await?;
    let fresh = appends(store, 1, APPENDS, None, Ids::Random).await?;
    line(
        "1-event append, new stream each time: p50 ms / commit ms",
        show(fresh),
    );
    let fresh = appends(store, BATCH_SIZE, BATCHES, None, Ids::Random).await?;
    line(
        "100-event append, new stream each time: p50 ms / commit ms",
        show(fresh),
    );
    // Alternate the two kinds of ids, so both see the same table sizes.
    let (mut random, mut ordered) = (Vec::new(), Vec::new());
    for _ in 0..10 {
        random.push(appends(store, BATCH_SIZE, BATCHES / 10, None, Ids::Random).await?);
        ordered.push(appends(store, BATCH_SIZE, BATCHES / 10, None, Ids::TimeOrdered).await?);
    }
    line(
        "100-event append, new streams, random (v4) ids: p50 / commit ms",
        mean(&random),
    );
    line(
        "100-event append, new streams, v7 ids: p50 / commit ms",
        mean(&ordered),
    );

    let mut long = Writer::new();
    for _ in 0..LONG_STREAM / 1_000 {
        let events = long.events(1_000);
        long.append(store, events).await?;
    }
    let long_single = appends(store, 1, APPENDS, Some(&mut long), Ids::Random).await?;
    line(
        &format!("1-event append, stream of {LONG_STREAM}+: p50 ms / commit ms"),
        show(long_single),
    );
    let long_batch = appends(store, BATCH_SIZE, BATCHES, Some(&mut long), Ids::Random).await?;
    line(
        &format!("100-event append, stream of {LONG_STREAM}+: p50 ms / commit ms"),
        show(long_batch),
    );

    let (grouped, lookup) = snapshot_forms(&store.database(), &long.stream).await?;
    line(
        "snapshot versions, GROUP BY stream (as the store), ms",
        format!("{grouped:.3}"),
    );
    line(
        "snapshot versions, per-stream MAX(version) lookup, ms",
        format!("{lookup:.3}"),
    );

    let concurrent = concurrent_new_streams(store).await?;
    line(
        "64 tasks x 100 1-event appends, new streams: events/s / per commit",
        concurrent,
    );

    // The same appends through sqlx without the store: what the append
    // path costs with the changes recommended in docs/benchmarks.md.
    let database = store.database();
    for (writers, size, commits, ids) in [
        (1, 1, APPENDS * 2, Ids::Random),
        (1, BATCH_SIZE, BATCHES * 2, Ids::Random),
        (1, BATCH_SIZE, BATCHES * 2, Ids::TimeOrdered),
        (lean::GROUP, 1, BATCHES * 2, Ids::Random),
    ] {
        let (p50, rate) = lean::commits(&database, writers, size, commits, ids).await?;
        line(
            &format!(
                "lean, {writers} stream(s) x {size} event(s) a commit, {ids:?} ids: p50 ms / events/s"
            ),
            format!("{p50:.3} / {rate:.0}"),
        );
    }
    Ok(())
}

/// Mean microseconds of `SELECT 1` through the pool and on one connection.
async fn round_trips(database: &Database) -> Result<(f64, f64)> {
    const SQL: &str = "SELECT 1";
    let per = |t: Instant| t.elapsed().as_secs_f64() * 1e6 / ROUND_TRIPS as f64;
    Ok(match database {
        Database::Sqlite(pool) => {
            let t = Instant::now();
            for _ in 0..ROUND_TRIPS {
                sqlx::query(SQL).execute(pool).await?;
            }
            let pooled = per(t);
            let mut conn = pool.acquire().await?;
            let t = Instant::now();
            for _ in 0..ROUND_TRIPS {
                sqlx::query(SQL).execute(&mut *conn).await?;
            }
            (pooled, per(t))
        }
        Database::Postgres(pool) => {
            let t = Instant::now();
            for _ in 0..ROUND_TRIPS {
                sqlx::query(SQL).execute(pool).await?;
            }
            let pooled = per(t);
            let mut conn = pool.acquire().await?;
            let t = Instant::now();
            for _ in 0..ROUND_TRIPS {
                sqlx::query(SQL).execute(&mut *conn).await?;
            }
            (pooled, per(t))
        }
    })
}

/// How event ids are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ids {
    /// `Uuid::new_v4`, as `NewEvent::new` does: each insert lands on a
    /// random page of the id index.
    Random,
    /// UUIDv7 layout (millisecond time, then a counter): inserts land at
    /// the end of the id index.
    TimeOrdered,
}

pub(super) fn time_ordered_id() -> Uuid {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut tail = [0u8; 10];
    tail[..8].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    uuid::Builder::from_unix_timestamp_millis(millis, &tail).into_uuid()
}

/// `count` appends of `size` events, to `stream` or a new stream each.
async fn appends(
    store: &SqlEventStore,
    size: usize,
    count: usize,
    mut stream: Option<&mut Writer>,
    ids: Ids,
) -> Result<(f64, f64)> {
    let mut latencies = Vec::with_capacity(count);
    let before = commits::snapshot();
    for _ in 0..count {
        let mut fresh = Writer::new();
        let writer = match stream.as_deref_mut() {
            Some(writer) => writer,
            None => &mut fresh,
        };
        let mut events = writer.events(size);
        if ids == Ids::TimeOrdered {
            for event in &mut events {
                event.id = time_ordered_id();
            }
        }
        let t = Instant::now();
        writer.append(store, events).await?;
        latencies.push(t.elapsed());
    }
    let commit = commits::snapshot().since(&before).mean_commit_ms();
    latencies.sort_unstable();
    let p50 = latencies[latencies.len() / 2].as_secs_f64() * 1e3;
    Ok((p50, commit))
}

fn show((p50, commit): (f64, f64)) -> String {
    format!("{p50:.3} / {commit:.3}")
}

/// The mean p50 and commit time of several runs, shown.
fn mean(runs: &[(f64, f64)]) -> String {
    let n = runs.len() as f64;
    show((
        runs.iter().map(|r| r.0).sum::<f64>() / n,
        runs.iter().map(|r| r.1).sum::<f64>() / n,
    ))
}

/// Mean milliseconds of the two forms of the versions part of the snapshot.
async fn snapshot_forms(database: &Database, stream: &str) -> Result<(f64, f64)> {
    const RUNS: usize = 200;
    let streams = vec![stream.to_string()];
    let per = |t: Instant| t.elapsed().as_secs_f64() * 1e3 / RUNS as f64;
    Ok(match database {
        Database::Sqlite(pool) => {
            let json = serde_json::to_string(&streams)?;
            let grouped = "SELECT stream, MAX(version) FROM events \
                 WHERE stream IN (SELECT value FROM json_each($1)) GROUP BY stream";
            let lookup = "SELECT j.value, (SELECT MAX(version) FROM events WHERE stream = j.value) \
                 FROM json_each($1) AS j";
            let mut times = Vec::new();
            for sql in [grouped, lookup] {
                let t = Instant::now();
                for _ in 0..RUNS {
                    sqlx::query(sql).bind(&json).fetch_all(pool).await?;
                }
                times.push(per(t));
            }
            (times[0], times[1])
        }
        Database::Postgres(pool) => {
            let grouped =
                "SELECT stream, MAX(version) FROM events WHERE stream = ANY($1) GROUP BY stream";
            let lookup = "SELECT s, (SELECT MAX(version) FROM events WHERE stream = s) \
                 FROM unnest($1::text[]) AS s";
            let mut times = Vec::new();
            for sql in [grouped, lookup] {
                let t = Instant::now();
                for _ in 0..RUNS {
                    sqlx::query(sql).bind(&streams).fetch_all(pool).await?;
                }
                times.push(per(t));
            }
            (times[0], times[1])
        }
    })
}

/// 64 tasks, each making 100 single-event appends to new streams.
async fn concurrent_new_streams(store: &SqlEventStore) -> Result<String> {
    const TASKS: usize = 64;
    const EACH: usize = 100;
    let before = commits::snapshot();
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..EACH {
                    let mut writer = Writer::new();
                    let events = writer.events(1);
                    writer.append(&store, events).await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let rate = (TASKS * EACH) as f64 / started.elapsed().as_secs_f64();
    let per_commit = commits::snapshot().since(&before).appends_per_commit();
    Ok(format!("{rate:.0} / {per_commit:.1}"))
}
