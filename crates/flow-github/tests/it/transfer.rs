//! Redirects, credential-free downloads and uploads to the host GitHub names.

use bytes::Bytes;
use flow_github::Request;
use serde_json::json;
use wiremock::matchers::{body_bytes, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::{TOKEN, requests, rig};

#[tokio::test]
async fn a_log_redirect_is_followed_without_the_token_and_only_the_tail_kept() {
    let r = rig().await;
    let blob = MockServer::start().await;
    let signed = format!("{}/logs/301?sig=SECRETSIG", blob.uri());
    Mock::given(method("GET"))
        .and(path("/repos/o/r/actions/jobs/301/logs"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", signed.as_str()))
        .mount(&r.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/logs/301"))
        .respond_with(ResponseTemplate::new(200).set_body_string("line 1\nline 2\nline 3\n"))
        .mount(&blob)
        .await;
    let location = r
        .client
        .redirect_location("/repos/o/r/actions/jobs/301/logs")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(location, signed);
    let tail = r
        .client
        .download_tail(&location, "job log", 14)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tail, b"line 2\nline 3\n");
    let seen = requests(&blob).await;
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0].headers.get("authorization").is_none(),
        "the token stayed home"
    );
    // The API request did carry it.
    let api = requests(&r.server).await;
    assert!(api[0].headers.get("authorization").is_some());
}

#[tokio::test]
async fn missing_logs_are_none_and_download_errors_never_show_the_signed_url() {
    let r = rig().await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/actions/jobs/1/logs"))
        .respond_with(ResponseTemplate::new(410))
        .mount(&r.server)
        .await;
    assert_eq!(
        r.client
            .redirect_location("/repos/o/r/actions/jobs/1/logs")
            .await
            .unwrap(),
        None
    );
    let blob = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/gone"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&blob)
        .await;
    Mock::given(method("GET"))
        .and(path("/denied"))
        .respond_with(ResponseTemplate::new(403))
        .mount(&blob)
        .await;
    let gone = format!("{}/gone?sig=SECRETSIG", blob.uri());
    assert_eq!(
        r.client.download_tail(&gone, "job log", 10).await.unwrap(),
        None
    );
    let denied = format!("{}/denied?sig=SECRETSIG", blob.uri());
    let e = r
        .client
        .download_tail(&denied, "job log", 10)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "github: GET job log: status 403");
    assert!(!format!("{e:?}").contains("SECRETSIG"));
}

#[tokio::test]
async fn uploads_go_to_the_named_host_with_the_token_and_a_binary_body_once() {
    let r = rig().await;
    let uploads = MockServer::start().await;
    let bytes = Bytes::from_static(b"\x1f\x8b\x08\x00binary");
    Mock::given(method("POST"))
        .and(path("/repos/o/r/releases/7/assets"))
        .and(query_param("name", "tool v1.tar.gz"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("content-type", "application/gzip"))
        .and(header("x-github-api-version", "2022-11-28"))
        .and(body_bytes(bytes.to_vec()))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"id": 1, "name": "tool v1.tar.gz"})),
        )
        .expect(1)
        .mount(&uploads)
        .await;
    let url = format!(
        "{}/repos/o/r/releases/7/assets?name=tool%20v1.tar.gz",
        uploads.uri()
    );
    let answer = r
        .client
        .send(Request::upload(url.clone(), "application/gzip", bytes))
        .await
        .unwrap();
    assert_eq!(answer.json::<serde_json::Value>().unwrap()["id"], 1);
    uploads.verify().await;
    // A 502 on an upload is not sent again: it may have been stored.
    uploads.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502))
        .expect(1)
        .mount(&uploads)
        .await;
    let e = r
        .client
        .send(Request::upload(
            url,
            "application/gzip",
            Bytes::from_static(b"x"),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(502));
    uploads.verify().await;
}
