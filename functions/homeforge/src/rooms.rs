//! Rooms: owners and admins manage them all; everyone else sees the rooms they own.

use axum::extract::State as S;
use axum::http::StatusCode;
use axum::response::Response;
use civic_core::fields::{Body, FromBody, Patch, Valid};
use civic_core::item::{from_item, to_item};
use civic_core::{Error, Json, Query, Result, ids};
use civic_store::{Cond, GSI1PK, GSI1SK, Item, PK, SK, StoreError, Table, Typed, Update};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub use crate::keys::room_key;
use crate::keys::{ROOM, ROOMS, owner_pk, room_index_sk};
use crate::users::UserRecord;
use crate::{AtLeast, Caller, Id, PageParams, Pk, Staff, State, not_found};

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

impl Room {
    fn to_item(&self) -> Result<Item> {
        let key = room_key(self.id);
        to_item(
            self,
            &[
                (PK, key.pk),
                (SK, key.sk),
                (GSI1PK, owner_pk(self.owner)),
                (GSI1SK, room_index_sk(self.id)),
            ],
        )
    }

    pub async fn load(table: &dyn Table, id: i64) -> Result<Option<Self>> {
        Ok(table.get_as(&room_key(id)).await?)
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
    Ok(table
        .query_all_as(civic_store::Query::partition(ROOMS).limit(1000))
        .await?)
}

#[derive(ToSchema)]
pub struct RoomInput {
    name: Option<String>,
    description: Option<String>,
    /// User id the room belongs to (default: the creator).
    #[schema(value_type = Option<i64>)]
    owner: Option<Pk>,
}

impl FromBody for RoomInput {
    fn from_body(b: &mut Body) -> Self {
        Self {
            name: b.strict_string("name", true, false, 100),
            description: b.strict_string("description", false, true, 1000),
            owner: Pk::read(b, "owner", false),
        }
    }
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
        true => civic_store::Query::partition(ROOMS),
        false => civic_store::Query::index(owner_pk(caller.id())).prefix(ROOM),
    };
    crate::list(s.table.as_ref(), q, params, |r: Room| r).await
}

/// `POST /rooms/` (owners and admins).
#[utoipa::path(post, path = "/api/rooms", tag = "rooms", request_body = NewRoom, security(("bearer" = [])),
    responses((status = 201, body = Room), (status = 400), (status = 401), (status = 403)))]
async fn create_room(
    S(s): S<State>,
    AtLeast(caller): Staff,
    Valid(req): Valid<RoomInput>,
) -> Result<(StatusCode, Json<Room>)> {
    let owner = req.owner.unwrap_or_else(|| Pk {
        id: caller.id(),
        given: caller.id().into(),
    });
    ensure_user(s.table.as_ref(), &owner).await?;
    let room = Room {
        id: ids::next_id(s.table.as_ref(), "room").await?,
        name: req.name.unwrap_or_default(),
        description: req.description.unwrap_or_default(),
        owner: owner.id,
        created_at: civic_core::time::now_rfc3339(),
    };
    s.table.put_if_absent(room.to_item()?).await?;
    Ok((StatusCode::CREATED, Json(room)))
}

async fn ensure_user(table: &dyn Table, owner: &Pk) -> Result<()> {
    match UserRecord::load(table, owner.id).await? {
        Some(_) => Ok(()),
        None => Err(Error::field("owner", owner.no_such_object())),
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
    Patch(req): Patch<RoomInput>,
) -> Result<Json<Room>> {
    let mut update = Update::new(room_key(id)).cond(Cond::Exists);
    if let Some(name) = req.name {
        update = update.set("name", name);
    }
    if let Some(description) = req.description {
        update = update.set("description", description);
    }
    if let Some(owner) = req.owner {
        ensure_user(s.table.as_ref(), &owner).await?;
        update = update
            .set("owner", owner.id)
            .set(GSI1PK, owner_pk(owner.id));
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
