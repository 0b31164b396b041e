//! Rooms: owners and admins manage them all; everyone else sees the rooms they own.

use axum::extract::State as S;
use axum::http::StatusCode;
use axum::response::Response;
use civic_core::item::{from_item, to_item};
use civic_core::{Error, Json, Query, Result, ids};
use civic_store::{Cond, Item, Key, StoreError, Table, Update};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::users::UserRecord;
use crate::{
    AtLeast, Caller, Id, Invalid, PageParams, Staff, State, no_such_object, not_found,
    optional_text, pk, required_text, sk,
};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list_rooms, create_room))
        .routes(routes!(room_detail, update_room, delete_room))
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Room {
    pub id: i64,
    pub name: String,
    pub description: String,
    /// The user the room belongs to.
    pub owner: i64,
    pub created_at: String,
}

pub fn room_key(id: i64) -> Key {
    Key::new("ROOMS", sk(id))
}

impl Room {
    fn to_item(&self) -> Result<Item> {
        let key = room_key(self.id);
        to_item(
            self,
            &[
                ("PK", key.pk),
                ("SK", key.sk),
                ("GSI1PK", format!("OWNER#{}", self.owner)),
                ("GSI1SK", format!("ROOM#{}", sk(self.id))),
            ],
        )
    }

    pub async fn load(table: &dyn Table, id: i64) -> Result<Option<Self>> {
        table.get(&room_key(id)).await?.map(from_item).transpose()
    }

    /// The room, when `caller` may see it; others' rooms do not exist for them.
    pub async fn visible(table: &dyn Table, caller: &Caller, id: i64) -> Result<Option<Self>> {
        Ok(Self::load(table, id)
            .await?
            .filter(|r| caller.can_see(r.owner)))
    }
}

/// Every room (one query of the rooms partition).
pub async fn all_rooms(table: &dyn Table) -> Result<Vec<Room>> {
    table
        .query_all(civic_store::Query::partition("ROOMS").limit(1000))
        .await?
        .into_iter()
        .map(from_item)
        .collect()
}

#[derive(Deserialize, ToSchema)]
pub struct RoomInput {
    name: Option<String>,
    description: Option<String>,
    /// User id the room belongs to (default: the creator).
    #[schema(value_type = Option<i64>)]
    owner: Option<Value>,
}

civic_core::schema_variant!(
    /// `POST /api/rooms`' body: a [`RoomInput`] with its `name`.
    pub NewRoom = RoomInput, ["name"]
);

/// `GET /rooms/`: all rooms for owners and admins, one's own for others.
#[utoipa::path(get, path = "/api/rooms", tag = "rooms", params(PageParams), security(("bearer" = [])),
    responses((status = 200, body = Vec<Room>, headers(("x-next-cursor" = String))), (status = 401)))]
async fn list_rooms(
    S(s): S<State>,
    caller: Caller,
    Query(params): Query<PageParams>,
) -> Result<Response> {
    let q = match caller.is_staff() {
        true => civic_store::Query::partition("ROOMS"),
        false => civic_store::Query::index(format!("OWNER#{}", caller.id())).prefix("ROOM#"),
    };
    crate::list(s.table.as_ref(), q, params, |r: Room| r).await
}

/// `POST /rooms/` (owners and admins).
#[utoipa::path(post, path = "/api/rooms", tag = "rooms", request_body = NewRoom, security(("bearer" = [])),
    responses((status = 201, body = Room), (status = 400), (status = 401), (status = 403)))]
async fn create_room(
    S(s): S<State>,
    AtLeast(caller): Staff,
    Json(req): Json<RoomInput>,
) -> Result<(StatusCode, Json<Room>)> {
    let mut invalid = Invalid::default();
    let name = invalid.take("name", required_text(req.name.as_deref(), 100));
    let description = invalid.take(
        "description",
        optional_text(req.description.as_deref(), 1000),
    );
    let owner = match &req.owner {
        None | Some(Value::Null) => Some(caller.id()),
        Some(v) => invalid.take("owner", pk(v)),
    };
    invalid.check()?;
    let owner = owner.unwrap_or(caller.id());
    ensure_user(s.table.as_ref(), owner, req.owner.as_ref()).await?;
    let room = Room {
        id: ids::next_id(s.table.as_ref(), "room").await?,
        name: name.unwrap_or_default(),
        description: description.unwrap_or_default(),
        owner,
        created_at: civic_core::time::now_rfc3339(),
    };
    s.table.put_if_absent(room.to_item()?).await?;
    Ok((StatusCode::CREATED, Json(room)))
}

async fn ensure_user(table: &dyn Table, id: i64, given: Option<&Value>) -> Result<()> {
    match UserRecord::load(table, id).await? {
        Some(_) => Ok(()),
        None => Err(Error::field(
            "owner",
            no_such_object(given.unwrap_or(&id.into())),
        )),
    }
}

/// `GET /rooms/<id>/`.
#[utoipa::path(get, path = "/api/rooms/{id}", tag = "rooms", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = Room), (status = 401), (status = 404)))]
async fn room_detail(S(s): S<State>, caller: Caller, Id(id): Id) -> Result<Json<Room>> {
    Room::visible(s.table.as_ref(), &caller, id)
        .await?
        .map(Json)
        .ok_or_else(not_found)
}

/// `PUT /rooms/<id>/` (owners and admins): any of name, description, owner.
#[utoipa::path(put, path = "/api/rooms/{id}", tag = "rooms", params(("id" = i64, Path)), request_body = RoomInput,
    security(("bearer" = [])),
    responses((status = 200, body = Room), (status = 400), (status = 401), (status = 403), (status = 404)))]
async fn update_room(
    S(s): S<State>,
    _: Staff,
    Id(id): Id,
    Json(req): Json<RoomInput>,
) -> Result<Json<Room>> {
    let mut invalid = Invalid::default();
    let mut update = Update::new(room_key(id)).cond(Cond::Exists);
    if req.name.is_some()
        && let Some(name) = invalid.take("name", required_text(req.name.as_deref(), 100))
    {
        update = update.set("name", name);
    }
    if req.description.is_some()
        && let Some(d) = invalid.take(
            "description",
            optional_text(req.description.as_deref(), 1000),
        )
    {
        update = update.set("description", d);
    }
    let owner = match &req.owner {
        None | Some(Value::Null) => None,
        Some(v) => invalid.take("owner", pk(v)),
    };
    invalid.check()?;
    if let Some(owner) = owner {
        ensure_user(s.table.as_ref(), owner, req.owner.as_ref()).await?;
        update = update
            .set("owner", owner)
            .set("GSI1PK", format!("OWNER#{owner}"));
    }
    if update.set.is_empty() {
        return room_detail_for_staff(s.table.as_ref(), id).await;
    }
    match s.table.update(update).await {
        Ok(item) => Ok(Json(from_item(item)?)),
        Err(StoreError::ConditionFailed) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

async fn room_detail_for_staff(table: &dyn Table, id: i64) -> Result<Json<Room>> {
    Room::load(table, id).await?.map(Json).ok_or_else(not_found)
}

/// `DELETE /rooms/<id>/` (owners and admins). Its devices stay, with no room.
#[utoipa::path(delete, path = "/api/rooms/{id}", tag = "rooms", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 401), (status = 403), (status = 404)))]
async fn delete_room(S(s): S<State>, _: Staff, Id(id): Id) -> Result<StatusCode> {
    match s.table.delete(&room_key(id), Cond::Exists).await {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(StoreError::ConditionFailed) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}
