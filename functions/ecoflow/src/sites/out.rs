//! What the API shows: the response shapes of organizations, zones and cameras, built from a
//! [`Tree`] as it was read.

use serde::Serialize;
use utoipa::ToSchema;

use super::{Camera, Org, Tree, Zone, ZoneNode};

#[derive(Serialize, ToSchema)]
pub struct CameraBrief {
    id: i64,
    name: String,
    is_active: bool,
}

#[derive(Serialize, ToSchema)]
pub struct OrgBrief {
    id: i64,
    name: String,
    org_type: String,
}

#[derive(Serialize, ToSchema)]
pub struct ZoneInOrg {
    id: i64,
    name: String,
    zone_type: String,
    cameras: Vec<CameraBrief>,
}

/// An organization with its zones and their cameras.
#[derive(Serialize, ToSchema)]
pub struct OrgOut {
    id: i64,
    name: String,
    org_type: String,
    total_capacity: i64,
    /// 6 decimals, as a string.
    latitude: Option<String>,
    longitude: Option<String>,
    zones: Vec<ZoneInOrg>,
}

/// A zone with its organization and cameras.
#[derive(Serialize, ToSchema)]
pub struct ZoneOut {
    id: i64,
    name: String,
    zone_type: String,
    capacity: i64,
    latitude: Option<String>,
    longitude: Option<String>,
    organization: OrgBrief,
    cameras: Vec<CameraBrief>,
}

#[derive(Serialize, ToSchema)]
pub struct ZoneWithOrg {
    id: i64,
    name: String,
    zone_type: String,
    organization: OrgBrief,
}

/// A camera with its zone and the zone's organization.
#[derive(Serialize, ToSchema)]
pub struct CameraOut {
    id: i64,
    name: String,
    is_active: bool,
    created_at: String,
    zone: ZoneWithOrg,
}

fn camera_brief(c: &Camera) -> CameraBrief {
    CameraBrief {
        id: c.id,
        name: c.name.clone(),
        is_active: c.is_active,
    }
}

fn org_brief(o: &Org) -> OrgBrief {
    OrgBrief {
        id: o.id,
        name: o.name.clone(),
        org_type: o.org_type.clone(),
    }
}

impl Tree {
    pub fn out(&self) -> OrgOut {
        let o = &self.org;
        OrgOut {
            id: o.id,
            name: o.name.clone(),
            org_type: o.org_type.clone(),
            total_capacity: o.total_capacity,
            latitude: o.latitude.clone(),
            longitude: o.longitude.clone(),
            zones: self
                .zones
                .iter()
                .map(|z| ZoneInOrg {
                    id: z.zone.id,
                    name: z.zone.name.clone(),
                    zone_type: z.zone.zone_type.clone(),
                    cameras: z.cameras.iter().map(camera_brief).collect(),
                })
                .collect(),
        }
    }

    pub fn zone_out(&self, node: &ZoneNode) -> ZoneOut {
        let z = &node.zone;
        ZoneOut {
            id: z.id,
            name: z.name.clone(),
            zone_type: z.zone_type.clone(),
            capacity: z.capacity,
            latitude: z.latitude.clone(),
            longitude: z.longitude.clone(),
            organization: org_brief(&self.org),
            cameras: node.cameras.iter().map(camera_brief).collect(),
        }
    }

    pub fn zones_out(&self) -> impl Iterator<Item = ZoneOut> + '_ {
        self.zones.iter().map(|z| self.zone_out(z))
    }

    pub fn camera_out(&self, zone: &Zone, c: &Camera) -> CameraOut {
        CameraOut {
            id: c.id,
            name: c.name.clone(),
            is_active: c.is_active,
            created_at: c.created_at.clone(),
            zone: ZoneWithOrg {
                id: zone.id,
                name: zone.name.clone(),
                zone_type: zone.zone_type.clone(),
                organization: org_brief(&self.org),
            },
        }
    }

    pub fn cameras_out(&self) -> impl Iterator<Item = CameraOut> + '_ {
        self.zones
            .iter()
            .flat_map(|z| z.cameras.iter().map(|c| self.camera_out(&z.zone, c)))
    }
}
