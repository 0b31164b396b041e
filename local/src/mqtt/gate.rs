//! Who may do what on the device port. A device logs in as its thing name (`{app}-{id}`, also
//! its client id) with the credential its app issued; its app checks the password. It may then
//! publish only on its own inbound topics and subscribe only to its own command topics. With
//! authentication off (`--mqtt-auth off`, loopback only) anyone may connect, publish telemetry
//! and subscribe, but command topics stay the platform's: it publishes them on the broker's
//! internal listener, which the device port never reaches.

use civic_core::Platform;
use civic_core::iot::{DeviceClass, DeviceVerifier};
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
                Some(will) if self.is_command(&will.topic) => Err(ConnectReturnCode::NotAuthorized),
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

    fn is_command(&self, topic: &str) -> bool {
        self.classes.iter().any(|c| c.topics.is_command(topic))
    }

    pub fn may_publish(&self, peer: &Peer, topic: &str) -> bool {
        match peer {
            Peer::Anonymous => !self.is_command(topic),
            Peer::Device { class, id } => class.topics.may_publish(id, topic),
        }
    }

    pub fn may_subscribe(&self, peer: &Peer, filter: &str) -> bool {
        match peer {
            Peer::Anonymous => true,
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
