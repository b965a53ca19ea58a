//! Key derivation: SHA-256 over canonical JSON, with a namespace and a format version.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};

/// The key format version; part of every digest and of every Redis key (`v1`).
pub const KEY_VERSION: u32 = 1;

/// A validated namespace (`[A-Za-z0-9_.-]`, 1 to 64 characters) that keys are derived in.
///
/// Different namespaces never share keys: the namespace is hashed into the digest and written
/// into the Redis key. Cloning is cheap.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Namespace(Arc<str>);

impl Namespace {
    /// Validates `name`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidNamespace`] when `name` is empty, longer than 64 bytes, or holds a
    /// character outside `[A-Za-z0-9_.-]` (a `:` would make Redis keys ambiguous).
    pub fn new(name: &str) -> Result<Self> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if ok {
            Ok(Self(Arc::from(name)))
        } else {
            Err(Error::from(ErrorKind::InvalidNamespace(name.to_owned())))
        }
    }

    /// The namespace's name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key of `value`: SHA-256 over `"flow-cache\0v1\0{namespace}\0"` followed by the
    /// canonical JSON of `value` (object keys sorted, recursively; no whitespace).
    ///
    /// Equal values give equal keys whatever the field order of their maps.
    ///
    /// # Errors
    /// [`ErrorKind::Encode`] when `value` cannot be serialized to JSON (e.g. a map with
    /// non-string keys).
    pub fn key<T: Serialize + ?Sized>(&self, value: &T) -> Result<Key> {
        let json = serde_json::to_value(value)
            .map_err(|e| Error::from(ErrorKind::Encode(e.to_string())))?;
        let mut canonical = Vec::with_capacity(256);
        write_canonical(&json, &mut canonical);
        Ok(self.key_from_bytes(&canonical))
    }

    /// The key of raw bytes: SHA-256 over the same prefix as [`Namespace::key`] then `bytes`.
    #[must_use]
    pub fn key_from_bytes(&self, bytes: &[u8]) -> Key {
        let mut h = Sha256::new();
        h.update(b"flow-cache\0v");
        h.update(KEY_VERSION.to_string().as_bytes());
        h.update(b"\0");
        h.update(self.0.as_bytes());
        h.update(b"\0");
        h.update(bytes);
        Key {
            namespace: self.clone(),
            digest: h.finalize().into(),
        }
    }

    /// A key with a digest computed elsewhere (e.g. by another runner). The caller vouches that
    /// digests from different namespaces do not collide.
    #[must_use]
    pub fn key_from_digest(&self, digest: [u8; 32]) -> Key {
        Key {
            namespace: self.clone(),
            digest,
        }
    }
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A cache key: a namespace and a 32-byte SHA-256 digest.
///
/// Build one with [`Namespace::key`]. Its `Display` is the Redis key,
/// `flow:{namespace}:v1:{hex digest}`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    // Digest first: equality almost always differs there, so compare it first.
    digest: [u8; 32],
    namespace: Namespace,
}

impl Key {
    /// The namespace.
    #[must_use]
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The SHA-256 digest.
    #[must_use]
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The digest in lower-case hex (64 characters).
    #[must_use]
    pub fn hex(&self) -> String {
        hex::encode(self.digest)
    }

    /// The Redis key: `flow:{namespace}:v1:{hex}`.
    #[must_use]
    pub fn redis_key(&self) -> String {
        format!("flow:{}:v{KEY_VERSION}:{}", self.namespace, self.hex())
    }

    /// The first 8 digest bytes as a number; uniformly spread because the digest is SHA-256.
    pub(crate) fn spread(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.digest[..8]);
        u64::from_le_bytes(b)
    }
}

impl Hash for Key {
    // The digest is already a uniform hash: feeding 8 bytes of it is enough and keeps the
    // hot path cheap. Equal keys have equal digests, so this agrees with `Eq`.
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.spread());
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({self})")
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "flow:{}:v{KEY_VERSION}:{}", self.namespace, self.hex())
    }
}

/// Writes `v` as canonical JSON: object keys sorted by their UTF-8 bytes, recursively, no
/// whitespace; strings and numbers as `serde_json` writes them.
pub(crate) fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(&Value::String(k.clone()), out);
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(v: &Value, out: &mut Vec<u8>) {
    // Writing a scalar `Value` into a Vec cannot fail; an error would only come from the writer.
    if serde_json::to_writer(&mut *out, v).is_err() {
        out.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn canonical(v: &Value) -> String {
        let mut out = Vec::new();
        write_canonical(v, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn canonical_json_sorts_keys_recursively() {
        let v = json!({"b": 1, "a": {"z": [ {"y": 1, "x": 2} ], "c": "é\"q"}, "": null});
        assert_eq!(
            canonical(&v),
            r#"{"":null,"a":{"c":"é\"q","z":[{"x":2,"y":1}]},"b":1}"#
        );
    }

    #[test]
    fn key_ignores_field_order_but_not_values_or_namespace() {
        let ns = Namespace::new("llm").unwrap();
        let a = ns.key(&json!({"model": "m", "temperature": 0.0})).unwrap();
        let b = ns.key(&json!({"temperature": 0.0, "model": "m"})).unwrap();
        let c = ns.key(&json!({"temperature": 0.5, "model": "m"})).unwrap();
        let d = Namespace::new("other")
            .unwrap()
            .key(&json!({"model": "m", "temperature": 0.0}))
            .unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn key_is_stable_across_releases() {
        // Changing this digest invalidates every cache shared through Redis: bump KEY_VERSION.
        let key = Namespace::new("llm")
            .unwrap()
            .key(&json!({"b": [1, 2], "a": "x"}))
            .unwrap();
        let expected = {
            let mut h = Sha256::new();
            h.update(b"flow-cache\0v1\0llm\0{\"a\":\"x\",\"b\":[1,2]}");
            hex::encode(h.finalize())
        };
        assert_eq!(key.hex(), expected);
        assert_eq!(key.redis_key(), format!("flow:llm:v1:{expected}"));
        assert_eq!(key.to_string(), key.redis_key());
    }

    #[test]
    fn namespace_validation() {
        for bad in ["", "a:b", "a b", "ü", &"x".repeat(65)] {
            let err = Namespace::new(bad).unwrap_err();
            assert!(
                matches!(err.kind(), ErrorKind::InvalidNamespace(_)),
                "{bad:?}"
            );
            assert!(err.to_string().contains("expected 1 to 64 characters"));
        }
        assert_eq!(Namespace::new("a-b_c.9").unwrap().as_str(), "a-b_c.9");
    }

    #[test]
    fn unserializable_value_is_an_encode_error() {
        let mut m = std::collections::BTreeMap::new();
        m.insert((1, 2), 3);
        let err = Namespace::new("x").unwrap().key(&m).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Encode(_)));
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[a-z]{0,4}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(("[a-c]{1,2}", inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    fn reverse_objects(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .rev()
                    .map(|(k, v)| (k.clone(), reverse_objects(v)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(reverse_objects).collect()),
            other => other.clone(),
        }
    }

    proptest! {
        #[test]
        fn canonical_json_parses_back_and_ignores_insertion_order(v in arb_json()) {
            let text = canonical(&v);
            let parsed: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(&parsed, &v);
            prop_assert_eq!(canonical(&reverse_objects(&v)), text);
        }
    }
}
