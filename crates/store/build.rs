//! Rebuilds the crate when a migration is added: `sqlx::migrate!` embeds the
//! migration directories at compile time, and Cargo only notices changes to
//! files it already knows about (the build script sqlx recommends).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
