//! Ozone's live updates ([`civic_core::live`]):
//! - `ozone/live/devices/{deviceId}/events`, kind `event`: each stored event as the events
//!   listing returns it; `seq` is its receipt stamp, which grows per device.
//! - `ozone/live/devices/{deviceId}/status`, kind `status`: the device was heard from
//!   (`online: true`, `last_seen`); `seq` as its event's. And when it went quiet for the
//!   online window (`online: false`), told by the [`SWEEP`] within a minute; `seq` is one
//!   above its last event's, so it follows that event's `online: true` and precedes the next.
//!
//! The session is an `HttpOnly` cookie, which script cannot read and IoT Core's WSS endpoint
//! (another origin) never receives. So a signed-in page asks for a **live ticket**
//! (`POST /api/auth/live`): a random secret, stored only as its digest with a TTL, good for
//! [`TICKET_TTL`], and presented as the MQTT password. A ticket reads every device's topics,
//! as every signed-in user reads every device over REST; it stops working with the account's
//! next password change.

use axum::extract::State as S;
use chrono::{DateTime, Duration, Utc};
use civic_auth::secret::random_secret;
use civic_core::live::{self, LiveAccess, LiveScope, segment};
use civic_core::{Json, Platform, Result, Scheduled};
use civic_store::{Cond, Item, SkRange, now_epoch};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::auth::UserRecord;
use crate::gateway::Event;
use crate::keys::{DEVICES, ticket_key};
use crate::{APP, State, User, iso_ms, now};

/// How long a ticket admits a live connection; the connection ends with it, and the page
/// asks for a new one.
pub const TICKET_TTL: i64 = 3600;

pub const LIVE: LiveScope = LiveScope {
    app: APP,
    authorizer: |p| live::authorizer(State::new(p), authorize),
};

#[derive(Serialize, ToSchema)]
pub struct TicketReply {
    success: bool,
    /// The MQTT password for `/mqtt` (user name `ozone`).
    ticket: String,
    expires_in: i64,
}

/// A live ticket for the signed-in user.
#[utoipa::path(post, path = "/api/auth/live", tag = "auth", security(("session" = [])),
    responses((status = 200, body = TicketReply), (status = 401)))]
pub(crate) async fn ticket(S(s): S<State>, User(user): User) -> Result<Json<TicketReply>> {
    Ok(Json(TicketReply {
        success: true,
        ticket: issue(&s, &user).await?,
        expires_in: TICKET_TTL,
    }))
}

/// Stores a new ticket for `user` and returns it.
pub async fn issue(s: &State, user: &UserRecord) -> Result<String> {
    let ticket = random_secret();
    let key = ticket_key(&ticket);
    let item = Item::from_iter([
        (civic_store::PK.to_owned(), Value::from(key.pk)),
        (civic_store::SK.to_owned(), key.sk.into()),
        ("subject".to_owned(), user.username.clone().into()),
        ("ver".to_owned(), user.token_version.into()),
        (
            civic_store::EXPIRES_AT.to_owned(),
            (now_epoch() + TICKET_TTL).into(),
        ),
    ]);
    s.table.put(item, Cond::NotExists).await?;
    Ok(ticket)
}

async fn authorize(s: State, ticket: String) -> Result<Option<LiveAccess>> {
    let Some(item) = s.table.get(&ticket_key(&ticket)).await? else {
        return Ok(None);
    };
    let field = |name: &str| item.get(name).cloned().unwrap_or_default();
    let expires_at = field(civic_store::EXPIRES_AT).as_i64().unwrap_or(0);
    let subject = field("subject");
    let Some(username) = subject.as_str().filter(|_| expires_at > now_epoch()) else {
        return Ok(None);
    };
    let user = UserRecord::load(s.table.as_ref(), username).await?;
    let ver = field("ver").as_i64();
    Ok(user
        .filter(|u| Some(u.token_version) == ver)
        .map(|u| LiveAccess::everything(APP.name, &u.id.to_string(), expires_at)))
}

/// Publishes a newly stored event and its device's contact.
pub async fn event(p: &Platform, e: &Event, receipt: i64) {
    let live = p.live(APP.name);
    let device = format!("devices/{}", segment(&e.device_id));
    live.send(&format!("{device}/events"), "event", receipt, e)
        .await;
    let status = json!({"device_id": e.device_id, "online": true, "last_seen": e.received_at});
    live.send(&format!("{device}/status"), "status", receipt, &status)
        .await;
}

/// The offline sweep, an EventBridge schedule every minute (a timer in civic-local): "online"
/// is derived from last contact, so nothing is written when a device goes quiet, and only a
/// clock can tell.
pub const SWEEP: Scheduled = Scheduled {
    name: "ozone-live-sweep",
    app: APP,
    run: |p| Box::pin(sweep(State::new(p), now())),
};

/// How far each sweep looks back: twice its period, so a late or missed run still tells every
/// device that went quiet; a repeat carries the same seq, which pages drop.
const SWEEP_SPAN_SECS: i64 = 120;

/// Publishes `online: false` for each device whose last contact left the online window in the
/// last [`SWEEP_SPAN_SECS`] before `now`: one range query per index shard, not a scan.
pub async fn sweep(s: State, now: DateTime<Utc>) -> Result<Value> {
    let quiet_since = now - Duration::seconds(s.config.online_secs);
    let from = iso_ms(quiet_since - Duration::seconds(SWEEP_SPAN_SECS));
    // Below the first device heard at exactly `quiet_since`, which is still online.
    let range = SkRange::Between(from, iso_ms(quiet_since));
    let live = s.platform.live(APP.name);
    let (mut told, mut cursor) = (0, None);
    loop {
        let page = s
            .config
            .index_shards
            .page::<Item>(s.table.as_ref(), DEVICES, |q| q.sk(range.clone()), cursor)
            .await?;
        for device in &page.items {
            let field = |name: &str| device.get(name).cloned().unwrap_or_default();
            let Some(id) = field("device_id").as_str().map(str::to_owned) else {
                continue;
            };
            let seq = field(crate::gateway::LAST_RECEIPT).as_i64().unwrap_or(0) + 1;
            let status = json!({"device_id": id, "online": false, "last_seen": field("last_seen")});
            let path = format!("devices/{}/status", segment(&id));
            live.send(&path, "status", seq, &status).await;
            told += 1;
        }
        cursor = page.cursor;
        if cursor.is_none() {
            return Ok(json!({"offline": told}));
        }
    }
}
