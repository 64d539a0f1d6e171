//! Micro-benchmarks of the real-time delivery hot path: building an event's
//! envelope, routing and permission checks, and fan-out of one event to
//! 10,000 subscriber queues. Run with
//! `cargo bench -p larder-realtime --bench hot_paths`;
//! `docs/benchmarks.md` (*Hot paths*) has the method and figures.

use std::collections::HashSet;
use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::TimeZone;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use larder_realtime::bench::{FanOut, Writer, envelope, topic_candidates};
use larder_realtime::{Identity, Role, Topic};
use larder_store::{Metadata, RecordedEvent};
use serde_json::json;
use uuid::Uuid;

const STORE: &str = "0190f1c2-7a1b-7c3d-9e4f-5a6b7c8d9e0f";
const ITEM: &str = "0190f1c2-8b2c-7d4e-8f50-6b7c8d9e0f1a";

/// A `StockAdjusted` event as Larder writes it: about 200 bytes of data and
/// full metadata.
fn stock_adjusted(position: u64) -> RecordedEvent {
    RecordedEvent {
        position,
        id: Uuid::from_u128(0x0190_f1c2_9c3d_7e5f_a061_7c8d_9e0f_1a2b),
        stream: format!("item-{ITEM}"),
        version: 7,
        event_type: "StockAdjusted".into(),
        schema_version: 1,
        data: json!({
            "item_id": ITEM,
            "store_id": STORE,
            "delta": -2,
            "quantity": 38,
            "reason": "sale",
            "note": "till 3, receipt 000417",
            "unit": "each",
        })
        .into(),
        metadata: Metadata {
            tenant: "acme".into(),
            store: Some(STORE.into()),
            entity_type: "item".into(),
            entity_id: ITEM.into(),
            actor: Some("alice".into()),
            session: Some("sess-4f2a9c".into()),
            correlation_id: Some(Uuid::from_u128(0x0190_f1c2_ad4e_7f60_b172_8d9e_0f1a_2b3c)),
            causation_id: Some(Uuid::from_u128(0x0190_f1c2_be5f_7071_c283_9e0f_1a2b_3c4d)),
        },
        recorded_at: chrono::Utc
            .timestamp_opt(1_718_006_400, 123_456_000)
            .single()
            .expect("a valid timestamp"),
    }
}

fn identity(stores: Option<&[&str]>) -> Identity {
    Identity {
        user: "bob".into(),
        tenant: "acme".into(),
        stores: stores.map(|s| s.iter().map(|s| (*s).to_owned()).collect::<HashSet<_>>()),
        role: Role::Staff,
        session: None,
        expires_at: u64::MAX,
    }
}

fn envelope_benches(c: &mut Criterion) {
    let event = stock_adjusted(1235);
    let topic = format!("store:{STORE}");
    let (json, frame) = envelope(&event, &topic);
    println!(
        "event data {} bytes, event JSON {} bytes, event frame {} bytes",
        event.data.to_string().len(),
        json.len(),
        frame.len()
    );
    let mut group = c.benchmark_group("envelope");
    group.throughput(Throughput::Elements(1));
    group.bench_function("event_json_and_frame", |b| {
        b.iter(|| envelope(black_box(&event), black_box(&topic)))
    });
    let writer = Writer::default();
    let now = chrono::Utc::now();
    group.bench_function("writer_frame_per_delivery", |b| {
        b.iter(|| writer.frame(black_box(&frame), now))
    });
    group.finish();
}

fn routing_benches(c: &mut Criterion) {
    let event = stock_adjusted(1235);
    let all_stores = identity(None);
    let scoped = identity(Some(&[
        "0190f1c2-0000-7000-8000-000000000001",
        "0190f1c2-0000-7000-8000-000000000002",
        STORE,
    ]));
    let other = identity(Some(&["0190f1c2-0000-7000-8000-000000000009"]));
    let mut group = c.benchmark_group("routing");
    group.throughput(Throughput::Elements(1));
    group.bench_function("topic_candidates", |b| {
        b.iter(|| topic_candidates(black_box(&event.metadata)))
    });
    group.bench_function("can_see_all_stores", |b| {
        b.iter(|| black_box(&all_stores).can_see(black_box(&event.metadata)))
    });
    group.bench_function("can_see_store_scoped_hit", |b| {
        b.iter(|| black_box(&scoped).can_see(black_box(&event.metadata)))
    });
    group.bench_function("can_see_store_scoped_miss", |b| {
        b.iter(|| black_box(&other).can_see(black_box(&event.metadata)))
    });
    group.finish();
}

fn fan_out_benches(c: &mut Criterion) {
    const SUBSCRIBERS: usize = 10_000;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let _context = runtime.enter();
    let topic: Topic = format!("store:{STORE}").parse().expect("a topic");
    let mut group = c.benchmark_group("fan_out_10k");
    group.throughput(Throughput::Elements(SUBSCRIBERS as u64));
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(6));
    for (name, who) in [
        ("all_stores", identity(None)),
        ("store_scoped", identity(Some(&[STORE]))),
    ] {
        let mut fan_out = FanOut::new(who, topic.clone(), SUBSCRIBERS);
        if name == "all_stores" {
            println!(
                "connection future {} bytes",
                fan_out.connection_future_size()
            );
        }
        let mut event = stock_adjusted(0);
        // Routing into the queues alone, then routing plus the writers'
        // dequeue-and-frame work (the drain is outside the first figure).
        group.bench_function(format!("route/{name}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    event.position += 1;
                    let start = Instant::now();
                    fan_out.route(black_box(&event));
                    total += start.elapsed();
                    black_box(fan_out.drain());
                }
                total
            })
        });
        group.bench_function(format!("route_and_drain/{name}"), |b| {
            b.iter(|| {
                event.position += 1;
                fan_out.route(black_box(&event));
                black_box(fan_out.drain())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, envelope_benches, routing_benches, fan_out_benches);
criterion_main!(benches);
