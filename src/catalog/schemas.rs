//! The built-in events' payload schemas, and the one table that names them.
//!
//! To add a built-in event: write its payload type (unknown fields denied, identifiers as
//! [`ResourceId`]) and add a row to [`BUILTIN`]. Validation, the `?events=` filter, the reserved
//! names for `events.extra` and re-validation of what is read back from Redis all follow from it.

use serde::{Deserialize, Serialize};

use super::{Field, PublishError, deserialize};

/// Validates a `data` object found at a field of the body, and returns its compact form.
pub(super) type Compactor = fn(&str, &Field) -> Result<String, PublishError>;

/// The built-in events and the payload type each one's `data` must fit: one row per event.
pub(super) const BUILTIN: &[(&str, Compactor)] = &[
    ("banner.updated", compact::<BannerData>),
    ("product.updated", compact::<ProductData>),
    ("order.updated", compact::<OrderData>),
    ("catalog.updated", compact::<ChangeData<CatalogKind>>),
    ("inventory.updated", compact::<ChangeData<InventoryKind>>),
    ("customer.updated", compact::<ChangeData<CustomerKind>>),
    ("promotion.updated", compact::<ChangeData<PromotionKind>>),
    ("price_list.updated", compact::<ChangeData<PriceListKind>>),
    ("settings.updated", compact::<ChangeData<SettingsKind>>),
    ("notification.created", compact::<NotificationData>),
];

/// What an `events.extra` event carries: any JSON object.
pub(super) const EXTRA: Compactor = compact::<serde_json::Map<String, serde_json::Value>>;

/// An identifier of a shop resource: non-empty, short, printable. Anything else is a caller bug.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String")]
struct ResourceId(String);

const MAX_RESOURCE_ID_BYTES: usize = 256;

impl TryFrom<String> for ResourceId {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.is_empty() {
            return Err("must not be empty".into());
        }
        if value.len() > MAX_RESOURCE_ID_BYTES {
            return Err(format!("must be at most {MAX_RESOURCE_ID_BYTES} bytes"));
        }
        if value.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(value))
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum BannerAction {
    Created,
    Updated,
    Deleted,
    Reordered,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BannerData {
    action: BannerAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<ResourceId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ids: Option<Vec<ResourceId>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductData {
    id: ResourceId,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderData {
    id: ResourceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<ResourceId>,
}

/// What happened to the records a family event names.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ChangeAction {
    Created,
    Updated,
    Deleted,
}

/// A change in one family of admin screens: which kind of record, what happened, and the record
/// (`id`), the records (`ids`), or neither when there were too many to name (a bulk change).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeData<K> {
    kind: K,
    action: ChangeAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<ResourceId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ids: Option<Vec<ResourceId>>,
}

/// The product organisation screens: collections, categories, tags and types.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum CatalogKind {
    Collection,
    Category,
    Tag,
    Type,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum InventoryKind {
    InventoryItem,
    InventoryLevel,
    Reservation,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum CustomerKind {
    Customer,
    CustomerGroup,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum PromotionKind {
    Promotion,
    Campaign,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum PriceListKind {
    PriceList,
}

/// The records behind the dashboard's settings screens.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SettingsKind {
    Store,
    Region,
    TaxRegion,
    SalesChannel,
    StockLocation,
    ShippingOption,
    ShippingProfile,
    User,
    Invite,
    ApiKey,
}

/// A notification created for the admin's feed (the bell).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotificationData {
    id: ResourceId,
}

/// Round-trips `raw` through its typed form: rejects what the type rejects, drops whitespace.
///
/// Only a JSON object is a `data`: serde's derived structs would also take an array of their
/// fields in order (`["x"]` as `{"id":"x"}`), which no caller means.
fn compact<T: Serialize + for<'de> Deserialize<'de>>(
    raw: &str,
    at: &Field,
) -> Result<String, PublishError> {
    if !raw.trim_start().starts_with('{') {
        return Err(PublishError::invalid(at, "must be a JSON object"));
    }
    let data: T = deserialize(raw.as_bytes(), at)?;
    serde_json::to_string(&data).map_err(|e| PublishError::invalid(at, e.to_string()))
}
