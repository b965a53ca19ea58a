//! Redaction of secrets in text that may reach logs or errors.

/// Prefixes of well-known token formats (OpenAI, GitHub, Slack, Anthropic...).
const TOKEN_PREFIXES: &[&str] = &[
    "sk-",
    "ghp_",
    "gho_",
    "ghs_",
    "ghu_",
    "ghr_",
    "github_pat_",
    "xoxb-",
    "xoxp-",
];

/// The text that replaces a secret.
pub const REDACTED: &str = "[redacted]";

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Replaces each of `secrets` and every token that looks like an API key (`sk-...`, `ghp_...`,
/// `github_pat_...`, the value after `Bearer `) with `[redacted]`.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        if out.contains(*s) {
            out = out.replace(*s, REDACTED);
        }
    }
    let mut result = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while !rest.is_empty() {
        let found = TOKEN_PREFIXES
            .iter()
            .filter_map(|p| rest.find(p).map(|i| (i, p.len())))
            .chain(rest.find("Bearer ").map(|i| (i, "Bearer ".len())))
            .filter(|&(i, _)| i == 0 || !rest[..i].ends_with(is_token_char))
            .min_by_key(|&(i, _)| i);
        let Some((start, prefix_len)) = found else {
            result.push_str(rest);
            break;
        };
        let body_start = start + prefix_len;
        let body_len = rest[body_start..]
            .find(|c: char| !is_token_char(c))
            .unwrap_or(rest.len() - body_start);
        if body_len >= 8 {
            result.push_str(&rest[..start]);
            if rest[start..].starts_with("Bearer ") {
                result.push_str("Bearer ");
            }
            result.push_str(REDACTED);
        } else {
            result.push_str(&rest[..body_start + body_len]);
        }
        rest = &rest[body_start + body_len..];
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn redacts_keys_and_known_tokens() {
        let t = redact(
            "key k3y-secret-value and sk-abcdefghijkl, ghp_0123456789abcdef; Bearer abcdef0123456789.",
            &["k3y-secret-value"],
        );
        assert_eq!(
            t,
            "key [redacted] and [redacted], [redacted]; Bearer [redacted]."
        );
        assert_eq!(redact("task-1 sk-x", &[]), "task-1 sk-x");
    }

    proptest! {
        #[test]
        fn never_panics_and_removes_the_secret(text in ".{0,200}", secret in "[a-zA-Z0-9]{8,20}") {
            let t = redact(&format!("{text}{secret}{text}"), &[&secret]);
            prop_assert!(!t.contains(&secret) || text.contains(&secret));
        }
    }
}
