//! Menus and orders through the pipeline, on a real event store: recipes
//! checked against the store's items, lines copied from the menu, orders
//! read back with their total, and other tenants kept out.

use larder_domain::{
    Course, Currency, DomainError, Ingredient, LineId, LineQuantity, LineStatus, MenuCommand,
    MenuItemId, MenuItemName, Money, OrderCommand, OrderId, OrderStatus, PerPortion, Recipe,
    Service, StationKey, StationName, StationTimers, StoreCommand, StoreId, StoreName, StoreState,
    TenantId,
};
use larder_store::EventStore;
use uuid::Uuid;

use crate::tests::{Given, ctx, given_an_item, keyed};
use crate::{AppError, Context, NewLine, Request};

fn gbp(amount_minor: i64) -> anyhow::Result<Money> {
    Ok(Money::parse(amount_minor, Currency::parse("GBP")?)?)
}

fn recipe(item: larder_domain::ItemId, quantity: i64) -> anyhow::Result<Recipe> {
    Ok(Recipe::parse(vec![Ingredient {
        item_id: item,
        quantity: PerPortion::parse(quantity)?,
    }])?)
}

fn add_porridge(
    menu_item_id: MenuItemId,
    item: larder_domain::ItemId,
) -> anyhow::Result<MenuCommand> {
    Ok(MenuCommand::AddMenuItem {
        menu_item_id,
        name: MenuItemName::parse("Porridge")?,
        price: gbp(450)?,
        station: StationKey::parse("hob")?,
        recipe: recipe(item, 2)?,
    })
}

/// The given store with a `hob` station and porridge (two of the item per
/// portion) on its menu.
async fn with_a_menu(given: &Given) -> anyhow::Result<MenuItemId> {
    given
        .app
        .menu_command(
            &ctx(),
            given.store_id,
            MenuCommand::SetStation {
                station: StationKey::parse("hob")?,
                name: StationName::parse("Hob")?,
                timers: StationTimers::parse(120, 300)?,
            },
        )
        .await?;
    let porridge = MenuItemId::new(Uuid::new_v4());
    given
        .app
        .menu_command(&ctx(), given.store_id, add_porridge(porridge, given.item)?)
        .await?;
    Ok(porridge)
}

async fn open(given: &Given, ctx: &Context) -> Result<OrderId, AppError> {
    let order_id = OrderId::new(Uuid::new_v4());
    given
        .app
        .open_order(
            ctx,
            order_id,
            given.store_id,
            OrderCommand::OpenOrder {
                store_id: given.store_id,
                service: Service::Takeaway,
                covers: Default::default(),
                currency: Currency::parse("GBP")?,
                rush: false,
            },
        )
        .await?;
    Ok(order_id)
}

fn line(menu_item_id: MenuItemId, quantity: i64) -> anyhow::Result<NewLine> {
    Ok(NewLine {
        line_id: LineId::new(Uuid::new_v4()),
        menu_item_id,
        quantity: LineQuantity::parse(quantity)?,
        modifiers: vec![],
        note: Some(" extra hot ".to_owned()),
        course: Course::FIRST,
    })
}

#[tokio::test]
async fn a_recipe_naming_an_item_of_another_store_is_refused_and_appends_nothing()
-> anyhow::Result<()> {
    let given = given_an_item(3).await?;
    with_a_menu(&given).await?;
    let other = StoreId::new(Uuid::new_v4());
    given
        .app
        .execute(
            &ctx(),
            Request::<StoreState> {
                id: other,
                within: None,
                expected: None,
                command: StoreCommand::CreateStore {
                    store_id: other,
                    tenant: ctx().tenant,
                    name: StoreName::parse("Annex")?,
                },
            },
        )
        .await?;
    let head = given.store.head().await?;
    // The item is the given store's, not the annex's: the recipe is checked
    // before the menu's own rules (the annex has no station yet).
    let result = given
        .app
        .menu_command(
            &ctx(),
            other,
            add_porridge(MenuItemId::new(Uuid::new_v4()), given.item)?,
        )
        .await;
    assert!(
        matches!(result, Err(AppError::IngredientNotInStore(id)) if id == given.item.as_uuid()),
        "{result:?}"
    );
    let unknown = larder_domain::ItemId::new(Uuid::new_v4());
    let result = given
        .app
        .menu_command(
            &ctx(),
            given.store_id,
            add_porridge(MenuItemId::new(Uuid::new_v4()), unknown)?,
        )
        .await;
    assert!(
        matches!(result, Err(AppError::IngredientNotInStore(_))),
        "{result:?}"
    );
    assert_eq!(given.store.head().await?, head, "nothing appended");
    Ok(())
}

#[tokio::test]
async fn another_tenants_store_answers_not_found_before_its_recipe_is_read() -> anyhow::Result<()> {
    let given = given_an_item(3).await?;
    let globex = Context {
        tenant: TenantId::parse("globex")?,
        ..ctx()
    };
    let unknown = larder_domain::ItemId::new(Uuid::new_v4());
    let result = given
        .app
        .menu_command(
            &globex,
            given.store_id,
            add_porridge(MenuItemId::new(Uuid::new_v4()), unknown)?,
        )
        .await;
    assert!(
        matches!(result, Err(AppError::NotFound("store"))),
        "{result:?}"
    );
    assert!(matches!(
        given.app.menu(&globex.tenant, given.store_id).await,
        Err(AppError::NotFound("store"))
    ));
    Ok(())
}

#[tokio::test]
async fn a_line_copies_the_menu_item_and_the_order_reads_back_with_its_total() -> anyhow::Result<()>
{
    let given = given_an_item(3).await?;
    let porridge = with_a_menu(&given).await?;
    let order_id = open(&given, &ctx()).await?;
    let outcome = given
        .app
        .add_line(&ctx(), order_id, line(porridge, 3)?)
        .await?;
    assert_eq!(outcome.events, ["OrderLineAdded"]);
    assert_eq!(outcome.stream, order_id.stream_name());

    let menu = given.app.menu(&ctx().tenant, given.store_id).await?;
    assert_eq!(menu.version, 2);
    assert!(menu.position > 0);
    // A later price change leaves the order's line as it was taken.
    given
        .app
        .menu_command(
            &ctx(),
            given.store_id,
            MenuCommand::ChangeMenuItem {
                menu_item_id: porridge,
                name: None,
                price: Some(gbp(999)?),
                station: None,
                recipe: None,
            },
        )
        .await?;
    let found = given.app.order(&ctx().tenant, order_id).await?;
    assert_eq!(found.version, 2);
    assert_eq!(found.position, outcome.position);
    let order = found.value;
    assert_eq!(order.status, OrderStatus::Open);
    assert_eq!(order.lines[0].unit_price, gbp(450)?);
    assert_eq!(order.lines[0].status, LineStatus::Pending);
    assert_eq!(order.lines[0].note.as_deref(), Some("extra hot"));
    assert_eq!(crate::order_total(&order)?, gbp(1350)?);

    let unknown = MenuItemId::new(Uuid::new_v4());
    let result = given
        .app
        .add_line(&ctx(), order_id, line(unknown, 1)?)
        .await;
    assert!(
        matches!(
            result,
            Err(AppError::Rejected(DomainError::MenuItemNotFound { .. }))
        ),
        "{result:?}"
    );
    Ok(())
}

#[tokio::test]
async fn another_tenants_order_answers_like_one_that_does_not_exist() -> anyhow::Result<()> {
    let given = given_an_item(3).await?;
    let porridge = with_a_menu(&given).await?;
    let order_id = open(&given, &ctx()).await?;
    let globex = Context {
        tenant: TenantId::parse("globex")?,
        ..ctx()
    };
    let theirs = given
        .app
        .add_line(&globex, order_id, line(porridge, 1)?)
        .await;
    let missing = OrderId::new(Uuid::new_v4());
    let nobodys = given
        .app
        .add_line(&globex, missing, line(porridge, 1)?)
        .await;
    for result in [theirs, nobodys] {
        assert!(
            matches!(result, Err(AppError::NotFound("order"))),
            "{result:?}"
        );
    }
    assert!(matches!(
        given.app.order(&globex.tenant, order_id).await,
        Err(AppError::NotFound("order"))
    ));
    let fired = given
        .app
        .order_command(&globex, order_id, OrderCommand::Fire { course: None })
        .await;
    assert!(
        matches!(fired, Err(AppError::NotFound("order"))),
        "{fired:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_retried_line_is_answered_from_its_key_even_once_off_the_menu() -> anyhow::Result<()> {
    let given = given_an_item(3).await?;
    let porridge = with_a_menu(&given).await?;
    let order_id = open(&given, &ctx()).await?;
    let key = keyed("till-1", "line-fingerprint");
    let new_line = line(porridge, 2)?;
    let first = given.app.add_line(&key, order_id, new_line.clone()).await?;
    given
        .app
        .menu_command(
            &ctx(),
            given.store_id,
            MenuCommand::DeactivateMenuItem {
                menu_item_id: porridge,
            },
        )
        .await?;
    let again = given.app.add_line(&key, order_id, new_line).await?;
    assert!(again.replayed);
    assert_eq!(
        (again.version, again.position),
        (first.version, first.position)
    );
    let found = given.app.order(&ctx().tenant, order_id).await?;
    assert_eq!(found.value.lines.len(), 1);
    Ok(())
}
