//! One answered request.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::{Context, Error, ErrorKind, Result};

/// A response whose status the client accepted (2xx, 3xx, or a 304 answered from the ETag
/// cache), its body read whole.
#[derive(Debug, Clone)]
pub struct Response {
    pub(crate) context: Context,
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) not_modified: bool,
}

impl Response {
    /// The status GitHub answered (304 for a page answered from the ETag cache).
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers (of the cached page for a 304: a 304 carries no `Link`).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body (of the cached page for a 304; empty when the ETag came from
    /// [`crate::Client::seed_etag`] and no page is cached).
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// True when GitHub answered 304 Not Modified to a conditional request.
    pub fn not_modified(&self) -> bool {
        self.not_modified
    }

    /// The request this answers.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The body as UTF-8.
    ///
    /// # Errors
    /// [`ErrorKind::Body`] when it is not UTF-8.
    pub fn text(&self) -> Result<&str> {
        std::str::from_utf8(&self.body)
            .map_err(|e| Error::new(ErrorKind::Body, self.context.clone()).with_source(e))
    }

    /// The body parsed as JSON into `T`.
    ///
    /// # Errors
    /// [`ErrorKind::Body`] with the parser's error (line, column, field) as source.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::new(ErrorKind::Body, self.context.clone()).with_source(e))
    }

    /// The `Location` header (of a redirect).
    pub fn location(&self) -> Option<&str> {
        self.headers
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }

    /// The URL of `rel="next"` in the `Link` header.
    pub fn next_link(&self) -> Option<String> {
        next_link(&self.headers)
    }
}

/// The URL of `rel="next"` in a `Link` header (RFC 8288, as GitHub writes it).
pub(crate) fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|part| {
            let (url, params) = part.split_once(';')?;
            params
                .split(';')
                .any(|p| {
                    let p = p.trim();
                    p == "rel=\"next\"" || p == "rel=next"
                })
                .then(|| {
                    url.trim()
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .to_string()
                })
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn finds_the_next_link_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::LINK,
            http::HeaderValue::from_static(
                r#"<https://api.github.com/repositories/1/issues?page=1>; rel="prev", <https://api.github.com/repositories/1/issues?page=3>; rel="next", <https://api.github.com/repositories/1/issues?page=9>; rel="last""#,
            ),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://api.github.com/repositories/1/issues?page=3")
        );
        h.insert(
            http::header::LINK,
            http::HeaderValue::from_static(r#"<https://x/?page=1>; rel="first""#),
        );
        assert_eq!(next_link(&h), None);
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    #[test]
    fn json_errors_keep_the_parser_error_as_source() {
        let r = Response {
            context: Context::new("GET", "/repos/o/r"),
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::from_static(b"{\"a\": }"),
            not_modified: false,
        };
        let e = r.json::<serde_json::Value>().err();
        let e = e
            .as_ref()
            .map(|e| (e.to_string(), std::error::Error::source(e).is_some()));
        assert_eq!(
            e,
            Some((
                "github: GET /repos/o/r: unreadable response body".to_string(),
                true
            ))
        );
        assert_eq!(r.text().ok(), Some("{\"a\": }"));
    }
}
