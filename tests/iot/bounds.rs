//! Issue 21: connections to the device port and to `/mqtt` are bounded. Each bound is pushed
//! past with real clients, the one past it refused clearly, and a freed place taken again.

use rumqttc::ConnectReturnCode;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::Platform;
use crate::device_port_auth::{Raw, options};

/// With `--mqtt-max-devices 2`, a third device gets CONNACK 3 (server unavailable) before
/// its login is looked at; once one leaves, the next is admitted.
#[tokio::test]
async fn devices_past_the_bound_are_refused_with_server_unavailable() {
    // With a `--mqtt-` argument the harness leaves the port to the test.
    let args = [
        "--mqtt-port",
        "0",
        "--mqtt-auth",
        "off",
        "--mqtt-max-devices",
        "2",
    ];
    let api = Platform::start_with(&args).await;
    let url = api.broker().await;
    let first = Raw::connect(options(&url, "one", None)).await.unwrap();
    let _second = Raw::connect(options(&url, "two", None)).await.unwrap();
    let third = Raw::connect(options(&url, "three", None)).await;
    assert_eq!(third.err(), Some(ConnectReturnCode::ServiceUnavailable));
    drop(first);
    crate::eventually("a freed place", || async {
        Raw::connect(options(&url, "three", None)).await.ok()
    })
    .await;
}

/// With `--mqtt-max-live 1`, a second browser gets 503 with `Retry-After` at the upgrade;
/// once the first closes, a browser connects again.
#[tokio::test]
async fn live_connections_past_the_bound_get_503_with_retry_after() {
    let api = Platform::start_with(&["--mqtt-port", "0", "--mqtt-max-live", "1"]).await;
    let url = api.server.url("/mqtt").replacen("http://", "ws://", 1);
    let open = || async {
        let mut req = url.clone().into_client_request().unwrap();
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", "mqtt".parse().unwrap());
        tokio_tungstenite::connect_async(req).await
    };
    let (first, _) = open().await.expect("the first browser connects");
    match open().await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), 503);
            assert_eq!(res.headers()["retry-after"], "1");
        }
        other => panic!("a second browser: {:?}", other.map(|(_, res)| res.status())),
    }
    drop(first);
    crate::eventually("a freed place", || async { open().await.ok().map(|_| ()) }).await;
}
