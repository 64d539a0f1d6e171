//! Follows a store's inventory live and sells one item, exactly once.
//!
//! ```sh
//! LARDER_TOKEN=$TOKEN STORE=$STORE cargo run -p larder-client --example follow
//! ```
//!
//! (`TOKEN` and `STORE` as in the README's quick start; `LARDER_URL`
//! defaults to `http://127.0.0.1:8080`.) Stop the server and start it again:
//! the example goes on where it was, nothing lost and nothing twice.

use futures_util::StreamExt;
use larder_client::{Client, Command, Update};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::var("LARDER_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let token = std::env::var("LARDER_TOKEN").map_err(|_| "set LARDER_TOKEN")?;
    let store = std::env::var("STORE").map_err(|_| "set STORE")?;
    let client = Client::new(&base, token)?;

    // The state from a REST read, then live events after its position.
    let inventory = client.get(&format!("/stores/{store}/items")).await?;
    let items = inventory["items"].as_array().cloned().unwrap_or_default();
    println!(
        "{} items at position {}",
        items.len(),
        inventory["position"]
    );
    let since = inventory["position"].as_u64();
    let mut updates = client.subscribe([format!("store:{store}")], since).await?;

    // A sale, exactly once: one Idempotency-Key for all its attempts.
    if let Some(item) = items.first().and_then(|i| i["item_id"].as_str()) {
        let body = json!({ "delta": -1, "reason": "sold" });
        let sale = Command::post(format!("/items/{item}/adjust"), &body)?;
        let answer = client.command(sale).await?;
        println!(
            "sold one: version {:?} at position {:?} (replayed: {})",
            answer.version(),
            answer.position(),
            answer.replayed
        );
    }

    while let Some(update) = updates.next().await {
        match update? {
            Update::Event(e) => {
                println!("{} {} {}", e.position, e.event.event_type, e.event.data)
            }
            Update::Reset { position, .. } => {
                println!("events were skipped: read the inventory again (live from {position})")
            }
            _ => {}
        }
    }
    Ok(())
}
