//! A device's identity on MQTT and the topics it may use. The identity is the device's AWS IoT
//! thing name, `{app}-{device id}` (`streetlight-SL001`, `ozone-dev-a`, `homeforge-12`): the
//! client id and user name locally, the client id (and thing) on IoT Core, so one firmware
//! setting serves both. A device publishes only on `{prefix}/{id}/{inbound leaf}` and
//! subscribes only to `{prefix}/{id}/{command leaf}`; command topics are the platform's alone.

/// One app's devices: where their topics live and which leaves go which way.
#[derive(Clone, Copy, Debug)]
pub struct DeviceTopics {
    pub app: &'static str,
    /// The levels before the device id: `streetlight/lights`.
    pub prefix: &'static str,
    /// Leaves the device publishes on (telemetry in): `status`.
    pub inbound: &'static [&'static str],
    /// Leaves the platform publishes on and the device subscribes to: `command`.
    pub commands: &'static [&'static str],
}

impl DeviceTopics {
    /// The thing name, MQTT client id and user name of device `id`.
    pub fn thing(&self, id: &str) -> String {
        format!("{}-{id}", self.app)
    }

    fn topic(&self, id: &str, leaf: &str) -> String {
        format!("{}/{id}/{leaf}", self.prefix)
    }

    /// Whether device `id` may publish on `topic`: one of its own inbound topics, exactly.
    pub fn may_publish(&self, id: &str, topic: &str) -> bool {
        self.inbound
            .iter()
            .any(|leaf| self.topic(id, leaf) == topic)
    }

    /// Whether device `id` may subscribe to `filter`: one of its own command topics, exactly
    /// (no wildcards, so never another device's commands).
    pub fn may_subscribe(&self, id: &str, filter: &str) -> bool {
        self.commands
            .iter()
            .any(|leaf| self.topic(id, leaf) == filter)
    }

    /// Whether `topic` (a name or a filter) can reach a command topic of one of these
    /// devices: `prefix/<any>/<command leaf>`, or a wildcard over it.
    pub fn is_command(&self, topic: &str) -> bool {
        self.commands.iter().any(|leaf| {
            let filter = format!("{}/+/{leaf}", self.prefix);
            crate::topic::matches(&filter, topic) || crate::topic::matches(topic, &filter)
        })
    }
}

/// `streetlight-SL001` → `("streetlight", "SL001")`. The id must be one topic level: not empty,
/// no `/`, no wildcard, no control characters, at most 128 bytes (IoT Core's thing names).
pub fn split_identity(name: &str) -> Option<(&str, &str)> {
    let (app, id) = name.split_once('-')?;
    let level = !id.is_empty()
        && name.len() <= 128
        && !id
            .chars()
            .any(|c| matches!(c, '/' | '+' | '#') || c.is_control());
    (!app.is_empty() && level).then_some((app, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIGHTS: DeviceTopics = DeviceTopics {
        app: "streetlight",
        prefix: "streetlight/lights",
        inbound: &["status"],
        commands: &["command"],
    };

    #[test]
    fn a_device_publishes_on_its_own_inbound_topics_only() {
        assert!(LIGHTS.may_publish("SL1", "streetlight/lights/SL1/status"));
        for other in [
            "streetlight/lights/SL2/status",
            "streetlight/lights/SL1/command",
            "streetlight/lights/SL1/status/x",
            "streetlight/lights/+/status",
            "ozone/devices/SL1/events",
        ] {
            assert!(!LIGHTS.may_publish("SL1", other), "{other}");
        }
    }

    #[test]
    fn a_device_subscribes_to_its_own_commands_only() {
        assert!(LIGHTS.may_subscribe("SL1", "streetlight/lights/SL1/command"));
        for other in [
            "#",
            "streetlight/#",
            "streetlight/lights/+/command",
            "streetlight/lights/SL2/command",
            "streetlight/lights/SL1/status",
            "streetlight/lights/SL1/+",
        ] {
            assert!(!LIGHTS.may_subscribe("SL1", other), "{other}");
        }
    }

    #[test]
    fn command_topics_and_filters_over_them_are_recognised() {
        for t in [
            "streetlight/lights/SL1/command",
            "streetlight/lights/+/command",
            "streetlight/#",
            "#",
        ] {
            assert!(LIGHTS.is_command(t), "{t}");
        }
        assert!(!LIGHTS.is_command("streetlight/lights/SL1/status"));
    }

    #[test]
    fn identities_are_app_dash_one_topic_level() {
        assert_eq!(
            split_identity("streetlight-SL-1"),
            Some(("streetlight", "SL-1"))
        );
        assert_eq!(split_identity("homeforge-12"), Some(("homeforge", "12")));
        for bad in [
            "streetlight",
            "streetlight-",
            "-x",
            "ozone-a/b",
            "ozone-#",
            "ozone-+",
        ] {
            assert_eq!(split_identity(bad), None, "{bad}");
        }
        assert_eq!(LIGHTS.thing("SL1"), "streetlight-SL1");
    }
}
