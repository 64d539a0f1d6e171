//! For test suites that run against a shared PostgreSQL database (this
//! crate's, the read models', the end-to-end tests): behind the
//! `test-support` feature, which only test suites turn on.

/// Drops the PostgreSQL schema a test made: each test cleans up after
/// itself, so runs sharing a database never touch each other's schemas.
/// Blocking, on a thread of its own, so a `Drop` can call it. The lock
/// timeout bounds the wait for a server that is still shutting down; it
/// may still be writing, so the drop can lose a deadlock to it, and then
/// simply goes again (20 times at most). A failure is reported on stderr,
/// not raised: a test's outcome does not depend on its cleanup.
pub fn drop_pg_schema(url: &str, schema: &str) {
    let drop = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
    let url = url.to_owned();
    let dropped = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            use sqlx::Connection;
            let mut connection = sqlx::PgConnection::connect(&url)
                .await
                .map_err(|e| e.to_string())?;
            sqlx::query("SET lock_timeout = '10s'")
                .execute(&mut connection)
                .await
                .map_err(|e| e.to_string())?;
            let mut tries = 0;
            loop {
                match sqlx::query(&drop).execute(&mut connection).await {
                    Ok(_) => return Ok::<_, String>(()),
                    Err(_) if tries < 20 => {
                        tries += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                    Err(error) => return Err(error.to_string()),
                }
            }
        })
    })
    .join();
    match dropped {
        Ok(Ok(())) => {}
        Ok(Err(error)) => eprintln!("could not drop the test schema {schema}: {error}"),
        Err(_) => eprintln!("dropping the test schema {schema} panicked"),
    }
}
