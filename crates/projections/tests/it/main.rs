//! Larder's read models against the real event store, on both backends.

mod dashboard;
mod helpers;
mod kitchen;
mod nodes;
mod projections;

macro_rules! for_each_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::$name(crate::helpers::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::$name(crate::helpers::Backend::Postgres).await;
                }
            )*
        }
    };
}

use dashboard::*;
use kitchen::*;
use nodes::*;
use projections::*;

for_each_backend!(
    kitchen_tickets_follow_fire_start_bump_and_recall,
    the_order_board_and_preparation_times_follow_the_kitchen,
    menu_availability_follows_stock_and_the_menu,
    stores_inventory_and_activity_follow_the_log,
    inventory_pages_filters_and_hides_other_tenants,
    a_transfer_updates_both_items,
    a_restarted_projection_resumes_from_its_checkpoint,
    a_rebuild_from_position_zero_gives_the_same_read_models,
    a_hot_item_applied_in_one_batch_ends_as_applied_event_by_event,
    a_failing_projection_lags_and_recovers_without_failing_commands,
    a_store_snapshot_is_exactly_the_state_at_its_position,
    the_dashboard_counts_today_per_store_and_per_tenant,
    a_lagging_second_node_neither_repeats_nor_undoes_what_the_first_applied,
    two_nodes_following_one_log_apply_every_event_once,
    when_the_node_that_applies_stops_another_takes_over,
    a_reader_on_another_node_hears_of_each_commit_at_once,
);
