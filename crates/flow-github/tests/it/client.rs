//! Paging, conditional requests, headers, errors and redaction.

use flow_github::{Client, Config, ErrorKind, Request};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, Request as Seen, ResponseTemplate};

use crate::{TOKEN, requests, rig, rig_with};

const ISSUES: &str = "/repos/octo-org/octo-repo/issues";

/// Three pages of issues linked like GitHub links them (absolute URLs, `rel="next"`).
async fn mount_three_pages(server: &wiremock::MockServer, prefix: &str, expect: [u64; 3]) {
    let base = format!("{}{prefix}{ISSUES}", server.uri());
    for page in 1..=3u32 {
        let mut links = Vec::new();
        if page < 3 {
            links.push(format!(
                r#"<{base}?per_page=2&page={}>; rel="next""#,
                page + 1
            ));
        }
        links.push(format!(r#"<{base}?per_page=2&page=3>; rel="last""#));
        let items = json!([{ "number": page * 10 + 1 }, { "number": page * 10 + 2 }]);
        let mut m = Mock::given(method("GET")).and(path(format!("{prefix}{ISSUES}")));
        m = if page == 1 {
            m.and(wiremock::matchers::query_param_is_missing("page"))
        } else {
            m.and(query_param("page", page.to_string().as_str()))
        };
        m.respond_with(
            ResponseTemplate::new(200)
                .insert_header("link", links.join(", ").as_str())
                .set_body_json(items),
        )
        .expect(expect[page as usize - 1])
        .mount(server)
        .await;
    }
}

#[tokio::test]
async fn pages_through_three_pages_with_the_token_and_api_version_on_each() {
    for prefix in ["", "/api/v3"] {
        let r = rig_with(prefix, |c| c).await;
        mount_three_pages(&r.server, prefix, [1, 1, 1]).await;
        let numbers: Vec<Value> = r
            .client
            .pages(&format!("{ISSUES}?per_page=2"), 10)
            .items(None)
            .await
            .unwrap();
        let numbers: Vec<u64> = numbers
            .iter()
            .filter_map(|v| v["number"].as_u64())
            .collect();
        assert_eq!(numbers, [11, 12, 21, 22, 31, 32], "prefix {prefix:?}");
        let seen = requests(&r.server).await;
        assert_eq!(seen.len(), 3);
        assert_eq!(r.client.counts().requests, 3);
        for q in &seen {
            let h = |name: &str| q.headers.get(name).and_then(|v| v.to_str().ok());
            // Every page, the absolute `Link` ones included, carries the token (GHES keeps
            // its `/api/v3` prefix once).
            assert_eq!(h("authorization"), Some(format!("Bearer {TOKEN}").as_str()));
            assert_eq!(h("x-github-api-version"), Some("2022-11-28"));
            assert_eq!(h("accept"), Some("application/vnd.github+json"));
            assert!(
                q.url.path().starts_with(&format!("{prefix}/repos/")),
                "{}",
                q.url
            );
        }
        r.server.verify().await;
    }
}

#[tokio::test]
async fn max_pages_stops_the_listing_and_says_so() {
    let r = rig().await;
    mount_three_pages(&r.server, "", [1, 1, 0]).await;
    let mut pages = r.client.pages(&format!("{ISSUES}?per_page=2"), 2);
    let mut n = 0;
    while pages.next().await.unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 2);
    assert!(pages.truncated());
    assert_eq!(requests(&r.server).await.len(), 2);
}

#[tokio::test]
async fn a_304_answers_with_the_cached_page_and_is_counted() {
    let r = rig().await;
    Mock::given(method("GET"))
        .and(path(ISSUES))
        .and(header("if-none-match", r#"W/"abc""#))
        .respond_with(ResponseTemplate::new(304))
        .expect(2)
        .mount(&r.server)
        .await;
    Mock::given(method("GET"))
        .and(path(ISSUES))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("etag", r#"W/"abc""#)
                .insert_header("link", r#"<http://x/next>; rel="next""#)
                .set_body_json(json!([{ "number": 1 }])),
        )
        .expect(1)
        .mount(&r.server)
        .await;
    let first = r.client.get(ISSUES).await.unwrap();
    assert!(!first.not_modified());
    assert_eq!(r.client.etag_of(ISSUES).as_deref(), Some(r#"W/"abc""#));
    for _ in 0..2 {
        let again = r.client.get(ISSUES).await.unwrap();
        assert!(again.not_modified());
        assert_eq!(again.body(), first.body());
        // A 304 carries no `Link`: the cached page's still applies.
        assert_eq!(again.next_link().as_deref(), Some("http://x/next"));
    }
    let c = r.client.counts();
    assert_eq!((c.requests, c.not_modified), (3, 2));
    // Unconditional reads never send the ETag.
    let fresh = rig().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("etag", "\"e\"")
                .set_body_string("[]"),
        )
        .mount(&fresh.server)
        .await;
    fresh
        .client
        .send(Request::get(ISSUES).unconditional())
        .await
        .unwrap();
    fresh
        .client
        .send(Request::get(ISSUES).unconditional())
        .await
        .unwrap();
    assert!(
        requests(&fresh.server)
            .await
            .iter()
            .all(|q| q.headers.get("if-none-match").is_none())
    );
}

#[tokio::test]
async fn a_seeded_etag_from_another_process_gives_an_empty_304() {
    let r = rig().await;
    Mock::given(method("GET"))
        .and(header("if-none-match", "\"persisted\""))
        .respond_with(ResponseTemplate::new(304))
        .expect(1)
        .mount(&r.server)
        .await;
    r.client.seed_etag(ISSUES, "\"persisted\"");
    let a = r.client.get(ISSUES).await.unwrap();
    assert!(a.not_modified() && a.body().is_empty());
    // Without conditional requests, no ETag is sent nor kept.
    let off = rig_with("", |c| c.with_conditional(false)).await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("etag", "\"e\"")
                .set_body_string("[]"),
        )
        .mount(&off.server)
        .await;
    off.client.get(ISSUES).await.unwrap();
    off.client.get(ISSUES).await.unwrap();
    assert_eq!(off.client.etag_of(ISSUES), None);
    assert_eq!(off.client.counts().not_modified, 0);
}

#[tokio::test]
async fn a_401_is_not_retried_and_names_the_request() {
    let r = rig().await;
    Mock::given(method("GET"))
        .and(path(ISSUES))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"message": "Bad credentials"})),
        )
        .expect(1)
        .mount(&r.server)
        .await;
    let e = r
        .client
        .get(&format!("{ISSUES}?state=open&sig=x"))
        .await
        .unwrap_err();
    assert_eq!(
        e.kind(),
        &ErrorKind::Status {
            status: 401,
            message: "Bad credentials".into()
        }
    );
    // Method and path, never the query.
    assert_eq!(
        e.to_string(),
        format!("github: GET {ISSUES}: status 401: Bad credentials")
    );
    assert!(!e.is_retryable());
    assert!(r.sleeper.slept().is_empty());
    assert_eq!(r.client.counts().retries, 0);
}

#[tokio::test]
async fn the_token_never_reaches_debug_display_or_error_text() {
    let r = rig().await;
    let echo = |q: &Seen| {
        let auth = q
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if q.url.path().ends_with("/json") {
            ResponseTemplate::new(400).set_body_json(json!({"message": format!("you sent {auth}")}))
        } else {
            ResponseTemplate::new(502).set_body_string(format!("<html>proxy saw {auth}</html>"))
        }
    };
    Mock::given(method("GET"))
        .respond_with(echo)
        .mount(&r.server)
        .await;
    Mock::given(method("POST"))
        .respond_with(echo)
        .mount(&r.server)
        .await;
    let cases = [
        r.client.get("/echo/json").await.unwrap_err(),
        r.client.get("/echo/html").await.unwrap_err(),
        r.client
            .send(
                Request::post("/echo/json")
                    .with_json(&json!({"a": 1}))
                    .unwrap(),
            )
            .await
            .unwrap_err(),
    ];
    for e in &cases {
        let mut text = format!("{e} {e:?}");
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text.push_str(&format!(" {s} {s:?}"));
            source = s.source();
        }
        assert!(!text.contains(TOKEN), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
    }
    for debug in [
        format!("{:?}", r.client),
        format!("{:?}", r.client.config()),
        format!("{:?}", Request::get("/x")),
    ] {
        assert!(!debug.contains(TOKEN), "{debug}");
    }
}

#[tokio::test]
async fn bad_settings_are_errors_naming_the_setting() {
    let e = Client::new(Config::new().with_base_url("not a url")).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::InvalidArgument { name, .. } if name == "base_url"),
        "{e}"
    );
    let e =
        Client::new(Config::new().with_token(flow_github::SecretString::from("a\nb"))).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::InvalidArgument { name, .. } if name == "token"),
        "{e}"
    );
}

#[test]
fn outside_a_runtime_the_client_is_an_error_not_a_panic() {
    let e = Client::new(Config::new()).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::InvalidArgument { name, .. } if name == "runtime"),
        "{e}"
    );
}
