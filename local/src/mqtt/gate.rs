//! Who may do what on the device port. A device logs in as its thing name (`{app}-{id}`, also
//! its client id) with the credential its app issued; its app checks the password. It may then
//! publish only on its own inbound topics and subscribe only to its own command topics. With
//! authentication off (`--mqtt-auth off`, loopback only) anyone may connect, publish telemetry
//! and subscribe, but command and live topics (`{app}/live/...`) stay the platform's: it
//! publishes them on the broker's internal listener, which the device port never reaches, and
//! no device may subscribe to a filter that could receive a live message (those are read by
//! signed-in browsers, over `/mqtt`, within what their app allows).

use civic_core::iot::{DeviceClass, DeviceVerifier};
use civic_core::{Platform, live};
use civic_iot::device::split_identity;
use rumqttc::mqttbytes::Protocol;
use rumqttc::{ConnectReturnCode, mqttbytes::v4::Connect};

pub struct Gate {
    classes: &'static [&'static DeviceClass],
    /// Each class's credential check; `None` with authentication off.
    verifiers: Option<Vec<DeviceVerifier>>,
}

/// Who is on the other end of a device connection.
pub enum Peer {
    /// Authentication is off: nobody in particular.
    Anonymous,
    Device {
        class: &'static DeviceClass,
        id: String,
    },
}

impl Gate {
    pub fn new(platform: &Platform, classes: &'static [&'static DeviceClass], auth: bool) -> Self {
        let verifiers = auth.then(|| classes.iter().map(|c| (c.verifier)(platform)).collect());
        Self { classes, verifiers }
    }

    /// Admits a CONNECT, or says which CONNACK code refuses it.
    pub async fn admit(&self, c: &Connect) -> Result<Peer, ConnectReturnCode> {
        if c.protocol != Protocol::V4 {
            return Err(ConnectReturnCode::RefusedProtocolVersion);
        }
        let Some(verifiers) = &self.verifiers else {
            // A will is a publish the broker makes for the client later: the same rules.
            return match &c.last_will {
                Some(will) if self.is_platforms(&will.topic) => {
                    Err(ConnectReturnCode::NotAuthorized)
                }
                _ => Ok(Peer::Anonymous),
            };
        };
        let Some(login) = c.login.as_ref().filter(|l| !l.password.is_empty()) else {
            return Err(ConnectReturnCode::BadUserNamePassword);
        };
        let (app, id) =
            split_identity(&login.username).ok_or(ConnectReturnCode::BadUserNamePassword)?;
        let Some(i) = self.classes.iter().position(|c| c.topics.app == app) else {
            return Err(ConnectReturnCode::NotAuthorized);
        };
        let class = self.classes[i];
        // The client id is the identity, as IoT Core's policies require: a device that could
        // pick another's client id could take over that device's session and its commands.
        if c.client_id != login.username {
            return Err(ConnectReturnCode::BadClientId);
        }
        if let Some(will) = &c.last_will
            && !class.topics.may_publish(id, &will.topic)
        {
            return Err(ConnectReturnCode::NotAuthorized);
        }
        match (verifiers[i])(id.to_owned(), login.password.clone()).await {
            Ok(true) => Ok(Peer::Device {
                class,
                id: id.to_owned(),
            }),
            Ok(false) => Err(ConnectReturnCode::NotAuthorized),
            Err(e) => {
                tracing::error!(error = %e, app, "checking a device's MQTT credential");
                Err(ConnectReturnCode::ServiceUnavailable)
            }
        }
    }

    /// Commands and live updates: only the platform publishes them.
    fn is_platforms(&self, topic: &str) -> bool {
        civic_iot::topic::matches(live::ALL, topic)
            || self.classes.iter().any(|c| c.topics.is_command(topic))
    }

    pub fn may_publish(&self, peer: &Peer, topic: &str) -> bool {
        match peer {
            Peer::Anonymous => !self.is_platforms(topic),
            Peer::Device { class, id } => class.topics.may_publish(id, topic),
        }
    }

    pub fn may_subscribe(&self, peer: &Peer, filter: &str) -> bool {
        match peer {
            Peer::Anonymous => !civic_iot::topic::overlaps(filter, live::ALL),
            Peer::Device { class, id } => class.topics.may_subscribe(id, filter),
        }
    }
}

impl Peer {
    /// The client id the rules' `clientid()` sees.
    pub fn client_id(&self, connect: &Connect) -> Option<String> {
        match self {
            Peer::Device { class, id } => Some(class.topics.thing(id)),
            Peer::Anonymous => Some(connect.client_id.clone()).filter(|id| !id.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With authentication off, anonymous clients still cannot speak for the platform: no
    /// commands, no live updates published, and no subscription that could receive the
    /// live updates signed-in browsers get.
    #[test]
    fn anonymous_clients_cannot_reach_live_topics() {
        let gate = Gate {
            classes: crate::registry::DEVICES,
            verifiers: None,
        };
        let anon = Peer::Anonymous;
        assert!(!gate.may_publish(&anon, "streetlight/live/cities/delhi/summary"));
        assert!(!gate.may_publish(&anon, "streetlight/lights/SL001/command"));
        assert!(gate.may_publish(&anon, "streetlight/lights/SL001/status"));
        for filter in ["#", "+/live/#", "streetlight/#", "streetlight/+/cities/#"] {
            assert!(!gate.may_subscribe(&anon, filter), "{filter}");
        }
        assert!(gate.may_subscribe(&anon, "streetlight/lights/+/command"));
        assert!(gate.may_subscribe(&anon, "streetlight/lights/#"));
    }
}
