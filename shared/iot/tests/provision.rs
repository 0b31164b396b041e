//! Provisioning against moto's IoT control plane (`CIVIC_MOTO_URL`, started by scripts/test).

use aws_sdk_iot::types::CertificateStatus;
use civic_iot::Provision;
use civic_iot::aws::IotProvisioner;
use civic_testkit::moto;

#[tokio::test]
async fn a_device_gets_a_thing_and_one_live_certificate_under_the_policy() {
    let config = moto::aws_config().await;
    let iot = aws_sdk_iot::Client::new(&config);
    let policy = moto::unique("devices");
    let document = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:*:*:topic/ozone/devices/${iot:Connection.Thing.Attributes[device_id]}/events"}]}"#;
    iot.create_policy()
        .policy_name(&policy)
        .policy_document(document)
        .send()
        .await
        .unwrap();
    let provisioner = IotProvisioner::new(&config, &policy);
    let thing = moto::unique("ozone-dev");

    let first = provisioner
        .provision(&thing, &[("app", "ozone"), ("device_id", "dev-a")])
        .await
        .unwrap();
    assert_eq!(first.thing_name, thing);
    assert!(
        first.certificate_pem.contains("BEGIN CERTIFICATE"),
        "{first:?}"
    );
    assert!(first.private_key.contains("PRIVATE KEY"));
    assert!(!first.endpoint.is_empty());
    let described = iot
        .describe_thing()
        .thing_name(&thing)
        .send()
        .await
        .unwrap();
    let attrs = described.attributes().unwrap();
    assert_eq!(attrs["device_id"], "dev-a");
    assert_eq!(attrs["app"], "ozone");
    let targets = iot
        .list_targets_for_policy()
        .policy_name(&policy)
        .send()
        .await
        .unwrap();
    assert_eq!(
        targets.targets(),
        std::slice::from_ref(&first.certificate_arn)
    );

    // Provisioning again (a re-flashed device) retires the first certificate.
    let second = provisioner
        .provision(&thing, &[("app", "ozone"), ("device_id", "dev-a")])
        .await
        .unwrap();
    assert_ne!(second.certificate_arn, first.certificate_arn);
    let principals = iot
        .list_thing_principals()
        .thing_name(&thing)
        .send()
        .await
        .unwrap();
    assert_eq!(
        principals.principals(),
        std::slice::from_ref(&second.certificate_arn)
    );
    let old_id = first.certificate_arn.rsplit('/').next().unwrap();
    let old = iot
        .describe_certificate()
        .certificate_id(old_id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        old.certificate_description().unwrap().status(),
        Some(&CertificateStatus::Inactive)
    );
}

#[tokio::test]
async fn a_missing_policy_is_an_error_not_a_panic() {
    let config = moto::aws_config().await;
    let provisioner = IotProvisioner::new(&config, moto::unique("no-such-policy"));
    let err = provisioner
        .provision(&moto::unique("ozone-dev"), &[("device_id", "x")])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("attach_policy"), "{err}");
}
