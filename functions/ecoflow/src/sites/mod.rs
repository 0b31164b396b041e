//! Sites: organizations, their zones and the zones' cameras, stored as one tree per
//! organization partition (see the crate docs for the keys).
//!
//! Bounds keep every operation O(1): at most [`MAX_ZONES`] zones per organization and
//! [`MAX_CAMERAS`] cameras per zone, checked against counters on the parent items. So a tree is
//! at most ~3,100 small items (one DynamoDB query page), and a zone with its cameras and
//! pointers fits in one transaction (deleting or moving it is atomic). Deleting an
//! organization deletes its tree in transactions of up to 100 writes, the organization itself
//! last and only at the version that was read: a zone created meanwhile makes it start over.
//!
//! Every write to a zone's cameras bumps the zone's `version`, and every write to an
//! organization's zones bumps the organization's, so a delete or a move conditioned on a
//! parent's version never leaves an orphan behind.

pub mod cameras;
pub mod organizations;
mod out;
pub mod zones;

pub use out::{CameraBrief, CameraOut, OrgBrief, OrgOut, ZoneInOrg, ZoneOut, ZoneWithOrg};

use civic_core::item::{from_item, to_item};
use civic_core::{Error, Result};
use civic_store::{Cond, GSI1PK, GSI1SK, Item, Key, PK, Query, Row, SK, SkRange, Table, Write};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;

use crate::{State, pad, version_of, with_version};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .merge(organizations::routes())
        .merge(zones::routes())
        .merge(cameras::routes())
}

pub const MAX_ZONES: i64 = 100;
pub const MAX_CAMERAS: i64 = 30;
/// Items read per query of the `SITES` index (a page of trees).
const PAGE_ITEMS: usize = 1000;
const SITES: &str = "SITES";
/// DRF `max_digits=9, decimal_places=6` coordinates.
pub const LATITUDE: f64 = 90.0;
pub const LONGITUDE: f64 = 180.0;
pub const NAME_MAX: usize = 255;
pub const TYPE_MAX: usize = 100;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Org {
    pub id: i64,
    pub name: String,
    pub org_type: String,
    pub total_capacity: i64,
    pub latitude: Option<String>,
    pub longitude: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default)]
    pub zone_count: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Zone {
    pub id: i64,
    pub organization_id: i64,
    pub name: String,
    pub zone_type: String,
    pub capacity: i64,
    pub latitude: Option<String>,
    pub longitude: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default)]
    pub camera_count: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Camera {
    pub id: i64,
    pub organization_id: i64,
    pub zone_id: i64,
    pub name: String,
    pub is_active: bool,
    pub created_at: String,
    pub updated_at: String,
}

fn partition(org: i64) -> String {
    format!("ORG#{org}")
}

fn org_key(org: i64) -> Key {
    Key::new(partition(org), "ORG")
}

fn zone_sk(zone: i64) -> String {
    format!("ZONE#{}", pad(zone))
}

fn camera_sk(zone: i64, camera: i64) -> String {
    format!("ZONE#{}#CAM#{}", pad(zone), pad(camera))
}

fn zone_pointer(zone: i64) -> Key {
    Key::new(format!("ZONE#{zone}"), "ZONE")
}

fn camera_pointer(camera: i64) -> Key {
    Key::new(format!("CAMERA#{camera}"), "CAMERA")
}

/// An item of a tree with its keys: the partition's and the `SITES` index's sort keys agree
/// (the index's leads with the organization id).
fn site_item<T: Serialize>(value: &T, org: i64, sk: String, version: i64) -> Result<Item> {
    let gsi_sk = match sk.as_str() {
        "ORG" => pad(org),
        _ => format!("{}#{sk}", pad(org)),
    };
    let item = to_item(
        value,
        &[
            (PK, partition(org)),
            (SK, sk),
            (GSI1PK, SITES.into()),
            (GSI1SK, gsi_sk),
        ],
    )?;
    Ok(with_version(item, version))
}

impl Org {
    pub fn to_item(&self, version: i64) -> Result<Item> {
        site_item(self, self.id, "ORG".into(), version)
    }
}

impl Zone {
    pub fn to_item(&self, version: i64) -> Result<Item> {
        site_item(self, self.organization_id, zone_sk(self.id), version)
    }
    fn key(&self) -> Key {
        Key::new(partition(self.organization_id), zone_sk(self.id))
    }
    fn pointer(&self) -> Item {
        pointer(zone_pointer(self.id), self.organization_id, self.id)
    }
}

impl Camera {
    pub fn to_item(&self) -> Result<Item> {
        site_item(
            self,
            self.organization_id,
            camera_sk(self.zone_id, self.id),
            1,
        )
    }
    fn key(&self) -> Key {
        Key::new(
            partition(self.organization_id),
            camera_sk(self.zone_id, self.id),
        )
    }
    fn pointer(&self) -> Item {
        pointer(camera_pointer(self.id), self.organization_id, self.zone_id)
    }
}

/// Where a zone or camera lives: its organization (and zone).
fn pointer(key: Key, org: i64, zone: i64) -> Item {
    let mut item = Item::new();
    item.insert(PK.into(), key.pk.into());
    item.insert(SK.into(), key.sk.into());
    item.insert("organization_id".into(), org.into());
    item.insert("zone_id".into(), zone.into());
    item
}

/// Reads a pointer: `(organization id, zone id)`.
async fn follow(table: &dyn Table, key: &Key) -> Result<Option<(i64, i64)>> {
    Ok(table.get(key).await?.and_then(|p| {
        let field = |f: &str| p.get(f).and_then(Value::as_i64);
        field("organization_id").zip(field("zone_id"))
    }))
}

/// A zone, its cameras and the version it was read at.
#[derive(Clone, Debug)]
pub struct ZoneNode {
    pub zone: Zone,
    pub version: i64,
    pub cameras: Vec<Camera>,
}

/// An organization with its zones and their cameras, as stored at one moment.
#[derive(Clone, Debug)]
pub struct Tree {
    pub org: Org,
    pub version: i64,
    pub zones: Vec<ZoneNode>,
}

impl Tree {
    pub fn zone(&self, id: i64) -> Option<&ZoneNode> {
        self.zones.iter().find(|z| z.zone.id == id)
    }
    pub fn camera(&self, id: i64) -> Option<(&ZoneNode, &Camera)> {
        self.zones
            .iter()
            .find_map(|z| z.cameras.iter().find(|c| c.id == id).map(|c| (z, c)))
    }
}

/// One item of an organization's partition, decoded as what its sort key says it is.
enum Node {
    Org(Org, i64),
    Zone(Zone, i64),
    Camera(Camera),
}

/// The two attributes that tell a partition item's kind and version (serde skips the rest).
#[derive(Deserialize)]
struct Head {
    /// [`SK`].
    #[serde(rename = "SK", default)]
    sk: String,
    /// [`civic_store::VERSION`]; 0 when absent, as [`version_of`] reads it.
    version: Option<i64>,
}

impl Node {
    /// Two passes over the stored bytes (the head, then the struct), and no item map.
    fn decode(row: &Row) -> Result<Self> {
        let head: Head = row.decode()?;
        let version = head.version.unwrap_or(0);
        Ok(match head.sk.as_str() {
            "ORG" => Self::Org(row.decode()?, version),
            sk if sk.contains("#CAM#") => Self::Camera(row.decode()?),
            _ => Self::Zone(row.decode()?, version),
        })
    }
}

/// Every item of `query`, as nodes.
async fn query_nodes(table: &dyn Table, query: Query) -> Result<Vec<Node>> {
    let (mut nodes, mut cursor) = (Vec::new(), None);
    loop {
        let page = table.query_rows(query.clone().cursor(cursor)).await?;
        for row in &page.items {
            nodes.push(Node::decode(row)?);
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(nodes),
        }
    }
}

/// Groups nodes in nesting order (organization, then each zone followed by its cameras) into
/// trees. Children whose parent is missing (a delete cut short) are left out.
fn build_trees(nodes: Vec<Node>) -> Vec<Tree> {
    let mut trees: Vec<Tree> = Vec::new();
    for node in nodes {
        match node {
            Node::Org(org, version) => trees.push(Tree {
                org,
                version,
                zones: Vec::new(),
            }),
            Node::Camera(camera) => {
                let zone = trees
                    .last_mut()
                    .filter(|t| t.org.id == camera.organization_id)
                    .and_then(|t| t.zones.last_mut())
                    .filter(|z| z.zone.id == camera.zone_id);
                if let Some(zone) = zone {
                    zone.cameras.push(camera);
                }
            }
            Node::Zone(zone, version) => {
                if let Some(tree) = trees
                    .last_mut()
                    .filter(|t| t.org.id == zone.organization_id)
                {
                    tree.zones.push(ZoneNode {
                        zone,
                        version,
                        cameras: Vec::new(),
                    });
                }
            }
        }
    }
    trees
}

/// One organization's tree: one query of its partition.
pub async fn load_tree(table: &dyn Table, org: i64) -> Result<Option<Tree>> {
    let nodes = query_nodes(table, Query::partition(partition(org))).await?;
    Ok(build_trees(nodes).pop())
}

/// The tree holding zone `id` (pointer, then the tree: two round trips).
pub async fn zone_tree(table: &dyn Table, zone: i64) -> Result<Option<Tree>> {
    match follow(table, &zone_pointer(zone)).await? {
        Some((org, _)) => Ok(load_tree(table, org)
            .await?
            .filter(|t| t.zone(zone).is_some())),
        None => Ok(None),
    }
}

/// The tree holding camera `id`.
pub async fn camera_tree(table: &dyn Table, camera: i64) -> Result<Option<Tree>> {
    match follow(table, &camera_pointer(camera)).await? {
        Some((org, _)) => Ok(load_tree(table, org)
            .await?
            .filter(|t| t.camera(camera).is_some())),
        None => Ok(None),
    }
}

/// A page of whole trees from the `SITES` index, from organization `from` on: usually one
/// query. A page ends before the last organization the query cut off, and the next page
/// starts at it (the cursor is that organization's id).
pub async fn page_of_trees(
    table: &dyn Table,
    from: Option<i64>,
) -> Result<(Vec<Tree>, Option<i64>)> {
    let start = Query::index(SITES)
        .sk(SkRange::Gte(pad(from.unwrap_or(0))))
        .limit(PAGE_ITEMS);
    let (mut nodes, mut cursor) = (Vec::new(), None);
    loop {
        let page = table.query_rows(start.clone().cursor(cursor)).await?;
        for row in &page.items {
            nodes.push(Node::decode(row)?);
        }
        let Some(next) = page.cursor else {
            return Ok((build_trees(nodes), None));
        };
        let mut trees = build_trees(std::mem::take(&mut nodes));
        if trees.len() >= 2 {
            let cut = trees.pop().map(|t| t.org.id);
            return Ok((trees, cut));
        }
        // One organization larger than a page (bounded by the caps): read on.
        nodes = trees.pop().map(tree_nodes).unwrap_or_default();
        cursor = Some(next);
    }
}

/// A tree back into nodes, in order (only for [`page_of_trees`]' rare long read).
fn tree_nodes(t: Tree) -> Vec<Node> {
    let mut out = vec![Node::Org(t.org, t.version)];
    for z in t.zones {
        out.push(Node::Zone(z.zone, z.version));
        out.extend(z.cameras.into_iter().map(Node::Camera));
    }
    out
}

/// Deletes of a zone, its cameras and their pointers; the zone only at the version read.
fn zone_deletes(node: &ZoneNode) -> Vec<Write> {
    let mut writes = vec![
        Write::Delete {
            key: node.zone.key(),
            cond: Cond::Version(node.version),
        },
        Write::Delete {
            key: zone_pointer(node.zone.id),
            cond: Cond::Always,
        },
    ];
    for c in &node.cameras {
        writes.push(Write::Delete {
            key: c.key(),
            cond: Cond::Always,
        });
        writes.push(Write::Delete {
            key: camera_pointer(c.id),
            cond: Cond::Always,
        });
    }
    writes
}

/// A field error for a parent id that names nothing (DRF's `PrimaryKeyRelatedField`).
pub fn no_such(field: &str, id: i64) -> Error {
    Error::field(
        field,
        format!("Invalid pk \"{id}\" - object does not exist."),
    )
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
pub struct PageParams {
    /// Opaque cursor from the previous page's `X-Next-Cursor` header (pages hold whole
    /// organizations).
    pub cursor: Option<String>,
}

impl PageParams {
    pub fn start(&self) -> Result<Option<i64>> {
        crate::fields::int_param("cursor", self.cursor.as_deref())
            .map_err(|_| Error::bad_request("Invalid pagination cursor"))
    }
}

/// Applies one field of a partial update.
pub fn set<T: Clone>(field: &mut T, value: &Option<T>) {
    if let Some(v) = value {
        *field = v.clone();
    }
}

/// An organization item alone (no tree) and its version.
async fn load_org(table: &dyn Table, id: i64) -> Result<Option<(Org, i64)>> {
    match table.get(&org_key(id)).await? {
        Some(item) => {
            let version = version_of(&item);
            Ok(Some((from_item(item)?, version)))
        }
        None => Ok(None),
    }
}

/// `ADD` to a parent's child counter, bumping its version, at the version read.
fn count_child(key: Key, counter: &str, delta: i64, version: i64) -> Write {
    Write::Update(
        civic_store::Update::new(key)
            .add(counter, delta)
            .add(civic_store::VERSION, 1)
            .cond(Cond::Version(version)),
    )
}
