//! The checkpoints of projections and process managers: rows of
//! `projection_checkpoints`, one per name, the position up to which each
//! has committed. They only move forward, except on a reset.

use larder_store::Database;

use crate::ProjectionError;
use crate::db::{Arg, DbRow, Tx, args, fetch_all};

/// The position a projection has committed (0: nothing yet).
pub async fn checkpoint(db: &Database, name: &str) -> Result<u64, ProjectionError> {
    let rows = fetch_all(
        db,
        "SELECT position FROM projection_checkpoints WHERE name = $1",
        args![name],
    )
    .await?;
    rows.first().map_or(Ok(0), |row| row.uint(0))
}

/// Moves the checkpoints of `names` forward to `position`, in one
/// statement: never back, whoever else moved one meanwhile (another node
/// running the same projections).
pub(crate) async fn save_checkpoints(
    tx: &mut Tx,
    names: &[&str],
    position: u64,
) -> Result<(), ProjectionError> {
    if names.is_empty() {
        return Ok(());
    }
    // Each row its own two parameters, numbered in the order they appear.
    let rows: Vec<String> = (0..names.len())
        .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
        .collect();
    let values: Vec<Arg> = names
        .iter()
        .flat_map(|name| [Arg::from(*name), Arg::from(position)])
        .collect();
    tx.execute(
        &format!(
            "INSERT INTO projection_checkpoints (name, position) VALUES {} \
             ON CONFLICT (name) DO UPDATE SET position = CASE \
             WHEN excluded.position > projection_checkpoints.position THEN excluded.position \
             ELSE projection_checkpoints.position END",
            rows.join(", ")
        ),
        values,
    )
    .await?;
    Ok(())
}

/// Sets a checkpoint, back to 0 included (a reset).
pub(crate) async fn set_checkpoint(
    tx: &mut Tx,
    name: &str,
    position: u64,
) -> Result<(), ProjectionError> {
    tx.execute(
        "INSERT INTO projection_checkpoints (name, position) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET position = excluded.position",
        args![name, position],
    )
    .await?;
    Ok(())
}

/// Reads the checkpoints of `names` inside `tx` and holds them until `tx`
/// ends, so no other node's runner of the same projections can apply a
/// batch meanwhile: each event is applied once, cluster-wide, and a node
/// that lags never writes an older state over a newer one (it skips what
/// the checkpoints cover). Their positions, in the order of `names`; one
/// statement per step whatever their number.
///
/// On PostgreSQL the rows are made if missing (so there are rows to lock)
/// and locked `FOR UPDATE`, in name order, the same on every node; on
/// SQLite the write transaction (`BEGIN IMMEDIATE`) already holds the
/// database.
pub async fn lock_checkpoints(tx: &mut Tx, names: &[&str]) -> Result<Vec<u64>, ProjectionError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = (1..=names.len()).map(|n| format!("${n}")).collect();
    let values = || {
        names
            .iter()
            .map(|name| Arg::from(*name))
            .collect::<Vec<_>>()
    };
    let postgres = matches!(tx, Tx::Postgres(_));
    let read = format!(
        "SELECT name, position FROM projection_checkpoints WHERE name IN ({}){}",
        list.join(", "),
        if postgres {
            " ORDER BY name FOR UPDATE"
        } else {
            ""
        }
    );
    let locked = |rows: Vec<DbRow>| -> Result<Vec<Option<u64>>, ProjectionError> {
        let mut positions = vec![None; names.len()];
        for row in rows {
            let name = row.text(0)?;
            if let Some(i) = names.iter().position(|n| *n == name) {
                positions[i] = Some(row.uint(1)?);
            }
        }
        Ok(positions)
    };
    let mut positions = locked(tx.fetch_all(&read, values()).await?)?;
    // The rows exist after a group's first batch: only then are they made
    // (and locked again with the new ones), not at every batch.
    if postgres && positions.contains(&None) {
        let rows: Vec<String> = list.iter().map(|n| format!("({n}, 0)")).collect();
        tx.execute(
            &format!(
                "INSERT INTO projection_checkpoints (name, position) VALUES {} \
                 ON CONFLICT (name) DO NOTHING",
                rows.join(", ")
            ),
            values(),
        )
        .await?;
        positions = locked(tx.fetch_all(&read, values()).await?)?;
    }
    Ok(positions.into_iter().map(|p| p.unwrap_or(0)).collect())
}

/// The lowest committed checkpoint of `names`, in one statement whatever
/// the group's size (a follower reads it often).
pub(crate) async fn committed(db: &Database, names: &[&str]) -> Result<u64, ProjectionError> {
    if names.is_empty() {
        return Ok(u64::MAX);
    }
    let list: Vec<String> = (1..=names.len()).map(|n| format!("${n}")).collect();
    let rows = fetch_all(
        db,
        &format!(
            "SELECT position FROM projection_checkpoints WHERE name IN ({})",
            list.join(", ")
        ),
        names.iter().map(|name| Arg::from(*name)).collect(),
    )
    .await?;
    // A member without a row has committed nothing.
    if rows.len() < names.len() {
        return Ok(0);
    }
    rows.iter()
        .try_fold(u64::MAX, |lowest, row| Ok(lowest.min(row.uint(0)?)))
}
