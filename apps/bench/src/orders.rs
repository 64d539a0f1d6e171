//! The orders scenario: restaurants taking orders at their tills and cooking
//! them at their stations. Each store has a menu of two dishes on two
//! stations (a burger on the grill, a beer at the bar), one kitchen screen
//! per station (`station:{store}:{station}`) and its tills watching the
//! store's orders (`orders:{store}`). Orders arrive at a fixed rate, round
//! robin over the stores; each is opened, gets one line per station and is
//! fired. What counts is the time from sending the fire to the fired order
//! on each station's screen, and that every screen and till gets every
//! event it should, once and in order.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use reqwest::Method;
use serde_json::json;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::Bench;
use crate::drive::{Percentiles, drain};
use crate::ws::{self, Client};

/// What to run.
#[derive(Debug)]
pub struct Plan {
    pub stores: usize,
    /// Tills in all, shared out over the stores.
    pub tills: usize,
    /// Orders per second, over all stores.
    pub rate: u32,
    pub seconds: u64,
    pub max_in_flight: usize,
    pub drain: Duration,
}

/// One store set up for orders.
#[derive(Debug)]
struct Kitchen {
    store: String,
    burger: Uuid,
    beer: Uuid,
}

/// The two stations every store has, with the dish each cooks.
const STATIONS: [&str; 2] = ["grill", "bar"];

/// One order as driven: its events' positions and when its fire was sent.
#[derive(Debug, Clone, Copy)]
struct Order {
    store: usize,
    opened: u64,
    burger: u64,
    beer: u64,
    fired: u64,
    fire_sent: Instant,
}

impl Order {
    /// The positions a screen of `station` (index in [`STATIONS`]) gets:
    /// the opening (about the whole order), its own line, the fire.
    fn for_station(&self, station: usize) -> [u64; 3] {
        let line = if station == 0 { self.burger } else { self.beer };
        [self.opened, line, self.fired]
    }

    fn for_till(&self) -> [u64; 4] {
        [self.opened, self.burger, self.beer, self.fired]
    }
}

/// The figures of one run.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub stores: usize,
    pub screens: usize,
    pub tills: usize,
    pub rate: u32,
    pub orders: usize,
    pub failed_orders: usize,
    pub orders_per_sec: f64,
    /// Fire sent -> the fired order read on a station's screen.
    pub fire_to_screen_ms: Percentiles,
    /// Fire sent -> the fired order read at a till of the store.
    pub fire_to_till_ms: Percentiles,
    pub expected: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    pub unexpected: u64,
    pub closed_clients: usize,
    pub server_cpu_us_per_order: Option<f64>,
    /// Nothing lost, duplicated, reordered, unexpected or failed, and 95 %
    /// of the rate achieved.
    pub held: bool,
}

/// Sets up the stores, connects the screens and tills, drives the orders
/// and checks what every client got. Returns the clients for the caller
/// to close.
pub async fn run(bench: &Bench, plan: &Plan) -> Result<(Report, Vec<Client>)> {
    let mut kitchens = Vec::with_capacity(plan.stores);
    for n in 0..plan.stores {
        kitchens.push(
            set_up(bench, n)
                .await
                .with_context(|| format!("setting up store {n}"))?,
        );
    }
    let stop = bench.stop.subscribe();
    let url = &bench.server.url;
    let token = bench.client_token.as_str();
    // screens[store][station], tills[store]
    let mut screens = Vec::new();
    let mut tills = Vec::new();
    for (n, kitchen) in kitchens.iter().enumerate() {
        let mut mine = Vec::new();
        for station in STATIONS {
            let topic = format!("station:{}:{station}", kitchen.store);
            mine.push(ws::connect(url, token, &topic, bench.counter.clone(), stop.clone()).await?);
        }
        screens.push(mine);
        let count = plan.tills / plan.stores + usize::from(n < plan.tills % plan.stores);
        let topic = format!("orders:{}", kitchen.store);
        tills.push(
            ws::connect_many(count, 32, url, Some((token, &topic)), &bench.counter, &stop).await?,
        );
    }
    println!(
        "{} stores, {} kitchen screens, {} tills connected",
        plan.stores,
        plan.stores * STATIONS.len(),
        plan.tills
    );

    let before = bench.counter.get();
    let cpu_before = bench.server.cpu_seconds();
    let started = Instant::now();
    let (orders, failed) = drive(bench, &kitchens, plan).await;
    let driven_for = started.elapsed();
    let per_order = |n: usize| 3 * STATIONS.len() as u64 + 4 * n as u64;
    let expected: u64 = orders.iter().map(|o| per_order(tills[o.store].len())).sum();
    drain(&bench.counter, before + expected, plan.drain).await;
    let cpu = match (cpu_before, bench.server.cpu_seconds()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };

    let mut tally = Tally::default();
    for (n, mine) in screens.iter().enumerate() {
        for (station, screen) in mine.iter().enumerate() {
            let want = orders.iter().filter(|o| o.store == n);
            let arrived = tally.check(screen, want.clone().flat_map(|o| o.for_station(station)));
            tally
                .screen_ms
                .extend(want.filter_map(|o| latency(o, &arrived)));
        }
    }
    for (n, group) in tills.iter().enumerate() {
        for till in group {
            let want = orders.iter().filter(|o| o.store == n);
            let arrived = tally.check(till, want.clone().flat_map(|o| o.for_till()));
            tally
                .till_ms
                .extend(want.filter_map(|o| latency(o, &arrived)));
        }
    }
    let orders_per_sec = orders.len() as f64 / driven_for.as_secs_f64();
    let held = tally.lost == 0
        && tally.duplicated == 0
        && tally.out_of_order == 0
        && tally.unexpected == 0
        && tally.closed == 0
        && failed == 0
        && orders_per_sec >= 0.95 * f64::from(plan.rate);
    let report = Report {
        stores: plan.stores,
        screens: plan.stores * STATIONS.len(),
        tills: plan.tills,
        rate: plan.rate,
        orders: orders.len(),
        failed_orders: failed,
        orders_per_sec,
        fire_to_screen_ms: Percentiles::of(tally.screen_ms),
        fire_to_till_ms: Percentiles::of(tally.till_ms),
        expected,
        delivered: tally.delivered,
        lost: tally.lost,
        duplicated: tally.duplicated,
        out_of_order: tally.out_of_order,
        unexpected: tally.unexpected,
        closed_clients: tally.closed,
        server_cpu_us_per_order: cpu
            .filter(|_| !orders.is_empty())
            .map(|cpu| cpu * 1e6 / orders.len() as f64),
        held,
    };
    print(&report);
    let clients = screens.into_iter().chain(tills).flatten().collect();
    Ok((report, clients))
}

/// A store with two items, two stations and a dish on each.
async fn set_up(bench: &Bench, n: usize) -> Result<Kitchen> {
    let api = &bench.api;
    let store = api
        .create_store(&format!("Bench kitchen {n} {}", Uuid::new_v4().simple()))
        .await?;
    let bun = api.add_item(&store, "BUN").await?;
    let beer_keg = api.add_item(&store, "BEER").await?;
    for station in STATIONS {
        let body = json!({ "name": station, "warn_after_secs": 300, "late_after_secs": 600 });
        let path = format!("/stores/{store}/menu/stations/{station}");
        api.command(Method::PUT, &path, body).await?;
    }
    let (burger, beer) = (Uuid::new_v4(), Uuid::new_v4());
    for (id, name, station, item) in [
        (burger, "Burger", "grill", &bun),
        (beer, "Beer", "bar", &beer_keg),
    ] {
        let body = json!({
            "menu_item_id": id, "name": name, "station": station,
            "price": { "amount_minor": 1200, "currency": "EUR" },
            "recipe": [{ "item_id": item, "quantity": 1 }],
        });
        let path = format!("/stores/{store}/menu/items");
        api.command(Method::POST, &path, body).await?;
    }
    Ok(Kitchen {
        store,
        burger,
        beer,
    })
}

/// Drives `plan.rate` orders/s for `plan.seconds`, each opened, given its
/// two lines and fired in turn; at most `max_in_flight` at once. Returns
/// the orders that went through and how many failed.
async fn drive(bench: &Bench, kitchens: &[Kitchen], plan: &Plan) -> (Vec<Order>, usize) {
    let total = plan.rate as u64 * plan.seconds;
    let every = Duration::from_secs(1) / plan.rate.max(1);
    let gate = Arc::new(Semaphore::new(plan.max_in_flight.max(1)));
    let done = Arc::new(Mutex::new((Vec::new(), 0usize)));
    let mut tick = tokio::time::interval(every);
    let mut tasks = Vec::with_capacity(total as usize);
    for k in 0..total {
        tick.tick().await;
        let Ok(permit) = gate.clone().acquire_owned().await else {
            break;
        };
        let store = k as usize % kitchens.len();
        let kitchen = &kitchens[store];
        let (api, store_id) = (bench.api.clone(), kitchen.store.clone());
        let (burger, beer) = (kitchen.burger, kitchen.beer);
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let order = one_order(&api, &store_id, store, burger, beer).await;
            let mut done = done.lock().unwrap_or_else(|p| p.into_inner());
            match order {
                Ok(order) => done.0.push(order),
                Err(error) => {
                    if done.1 == 0 {
                        eprintln!("first failed order: {error:#}");
                    }
                    done.1 += 1;
                }
            }
            drop(permit);
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let mut done = done.lock().unwrap_or_else(|p| p.into_inner());
    (std::mem::take(&mut done.0), done.1)
}

async fn one_order(
    api: &crate::api::Api,
    store_id: &str,
    store: usize,
    burger: Uuid,
    beer: Uuid,
) -> Result<Order> {
    let order = Uuid::new_v4();
    let open = json!({ "order_id": order, "service": { "kind": "takeaway" }, "currency": "EUR" });
    let opened = api
        .command(Method::POST, &format!("/stores/{store_id}/orders"), open)
        .await?;
    let lines = format!("/orders/{order}/lines");
    let burger = api
        .command(Method::POST, &lines, json!({ "menu_item_id": burger }))
        .await?;
    let beer = api
        .command(Method::POST, &lines, json!({ "menu_item_id": beer }))
        .await?;
    let fire_sent = Instant::now();
    let fired = api
        .command(Method::POST, &format!("/orders/{order}/fire"), json!({}))
        .await?;
    Ok(Order {
        store,
        opened,
        burger,
        beer,
        fired,
        fire_sent,
    })
}

/// What the clients got against what they should have.
#[derive(Debug, Default)]
struct Tally {
    delivered: u64,
    lost: u64,
    duplicated: u64,
    out_of_order: u64,
    unexpected: u64,
    closed: usize,
    screen_ms: Vec<u64>,
    till_ms: Vec<u64>,
}

impl Tally {
    /// Checks one client against the positions it should have got; returns
    /// when each position first arrived.
    fn check(&mut self, client: &Client, want: impl Iterator<Item = u64>) -> HashMap<u64, Instant> {
        let log = client.take();
        let want: BTreeSet<u64> = want.collect();
        let mut arrived = HashMap::with_capacity(log.events.len());
        let mut last = 0;
        for &(position, at) in &log.events {
            self.delivered += 1;
            if position <= last {
                self.out_of_order += u64::from(position < last);
            }
            last = last.max(position);
            if !want.contains(&position) {
                self.unexpected += 1;
            } else if arrived.insert(position, at).is_some() {
                self.duplicated += 1;
            }
        }
        self.lost += want.iter().filter(|p| !arrived.contains_key(p)).count() as u64;
        self.unexpected += log.unexpected;
        self.closed += usize::from(log.closed.is_some());
        arrived
    }
}

/// Nanoseconds from the order's fire to the fired event's arrival.
fn latency(order: &Order, arrived: &HashMap<u64, Instant>) -> Option<u64> {
    let at = arrived.get(&order.fired)?;
    Some(at.saturating_duration_since(order.fire_sent).as_nanos() as u64)
}

fn print(r: &Report) {
    println!(
        "{:>6} {:>7} {:>5} {:>6} {:>7} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10} {:>16} {:>9} {:>5}",
        "stores",
        "screens",
        "tills",
        "rate/s",
        "orders",
        "orders/s",
        "screen p50",
        "screen p99",
        "screen max",
        "till p99",
        "delivered",
        "lost/dup/ooo/unx",
        "cpu us/o",
        "held"
    );
    let ms = |ms: f64| format!("{ms:.2}");
    println!(
        "{:>6} {:>7} {:>5} {:>6} {:>7} {:>8.1} {:>10} {:>10} {:>10} {:>10} {:>10} {:>16} {:>9} {:>5}",
        r.stores,
        r.screens,
        r.tills,
        r.rate,
        r.orders,
        r.orders_per_sec,
        ms(r.fire_to_screen_ms.p50),
        ms(r.fire_to_screen_ms.p99),
        ms(r.fire_to_screen_ms.max),
        ms(r.fire_to_till_ms.p99),
        r.delivered,
        format!(
            "{}/{}/{}/{}",
            r.lost, r.duplicated, r.out_of_order, r.unexpected
        ),
        crate::opt(r.server_cpu_us_per_order, 0),
        if r.held { "yes" } else { "no" },
    );
    if r.failed_orders > 0 || r.closed_clients > 0 {
        println!(
            "       failed orders {}, closed clients {}",
            r.failed_orders, r.closed_clients
        );
    }
}
