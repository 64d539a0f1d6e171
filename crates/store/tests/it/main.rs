//! The event store conformance suite: every test runs against every backend
//! (SQLite and PostgreSQL), so a backend proves itself by passing it.

mod conformance;
mod helpers;
mod idempotency;
mod known_state;
mod memory;
mod publish;
mod sqlite_only;

/// Generates, for each conformance test `name(Backend)`, one test per backend.
macro_rules! for_each_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    crate::conformance::$name(crate::helpers::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    crate::conformance::$name(crate::helpers::Backend::Postgres).await;
                }
            )*
        }
    };
}

for_each_backend!(
    appends_and_reads_a_stream,
    every_event_of_a_commit_keeps_its_own_fields,
    event_data_reads_back_as_written,
    a_wrong_expected_version_is_a_conflict_that_appends_nothing,
    concurrent_writers_to_one_stream_never_lose_an_update,
    retrying_an_append_with_the_same_ids_stores_nothing_twice,
    reusing_an_event_id_elsewhere_is_refused,
    a_multi_stream_append_is_all_or_nothing,
    read_all_filters_and_pages,
    concurrent_writers_and_a_tailer_see_every_position_once_in_order,
    a_held_open_lower_transaction_is_not_skipped_by_a_tailer,
    bad_input_is_refused_and_appends_nothing,
    positions_continue_after_a_restart,
    committed_events_are_published_in_position_order,
    a_tail_refills_from_the_store_when_the_bus_lags,
    a_tail_waits_for_a_missing_position_that_comes_on_the_bus,
    a_tail_without_a_bus_polls_the_store,
    a_sparse_filtered_read_pages_through_scan_windows,
    the_same_idempotency_key_appends_once,
    racing_appends_with_one_key_append_once,
    one_key_in_two_tenants_is_two_keys,
    an_expired_key_is_fresh_again_and_swept,
    a_refused_append_stores_no_key,
    a_bad_idempotency_key_is_refused,
);
