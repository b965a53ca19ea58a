//! Safe text out: what a model wrote (from inputs anyone opening a pull request can shape)
//! is made inert before it reaches GitHub.
//!
//! Modelled on the sanitizer of GitHub Agentic Workflows (gh-aw's `sanitize_content`): it
//! neutralizes mentions, drops links outside an allow-list, removes HTML comments and control
//! characters, defuses bot triggers and caps the size. Differences, and why:
//!
//! - mentions get a zero-width space after the `@` instead of backticks: a stray backtick in
//!   the input would pair with ours and leave the mention outside the code span;
//! - every `@` followed by a letter or digit is neutralized (emails too: GitHub links them);
//! - foreign URLs are defanged (`https[:]//evil.example/x`), not replaced, so a maintainer
//!   still sees what the model cited; only this repository's own URLs stay live;
//! - markdown link and reference syntax (`](`, `]:`) is broken, which also stops
//!   protocol-relative destinations (`[x](//evil.example)`); HTML tags and character
//!   references are escaped, so `<img src=…>` or `https&#58;//…` cannot rebuild a link.
//!
//! [`Sanitizer::sanitize`] is idempotent: sanitizing its output changes nothing.

use std::sync::LazyLock;

use regex::Regex;

/// The zero-width space that breaks a pattern without changing what a reader sees.
const ZWSP: char = '\u{200B}';

/// Default cap, bytes: below GitHub's 65,536-character limit of issue bodies and comments,
/// leaving room for the text around the model's.
pub const DEFAULT_MAX_BYTES: usize = 32 * 1024;

/// Appended when the text was cut.
const TRUNCATED: &str = "\n\n[… truncated]";

static ANSI: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]").ok()
});

static COMMENT: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"(?s)<!--.*?--!?>").ok());

static CLOSING: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\s*:?\s+(?:#\d|[\w.-]+/[\w.-]+#\d|https?://)")
        .ok()
});

/// Makes model output safe to post on GitHub. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sanitizer {
    /// `https://github.com/owner/repo` (lower case): the only live link prefix.
    repo_url: Option<String>,
    max_bytes: usize,
}

impl Default for Sanitizer {
    fn default() -> Self {
        Self {
            repo_url: None,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

impl Sanitizer {
    /// A sanitizer that keeps links to `https://github.com/{owner}/{repo}` only.
    pub fn for_repo(owner: &str, repo: &str) -> Self {
        Self::default().with_repo("https://github.com", owner, repo)
    }

    /// A sanitizer that keeps no link live.
    pub fn no_links() -> Self {
        Self::default()
    }

    /// Keeps links to `{server_url}/{owner}/{repo}` (GitHub Enterprise Server: the runner's
    /// `GITHUB_SERVER_URL`).
    #[must_use]
    pub fn with_repo(mut self, server_url: &str, owner: &str, repo: &str) -> Self {
        let server = server_url.trim_end_matches('/');
        self.repo_url = (!owner.is_empty() && !repo.is_empty() && server.starts_with("https://"))
            .then(|| format!("{server}/{owner}/{repo}").to_ascii_lowercase());
        self
    }

    /// Caps the output at `max` bytes (at least 256), cut at a word boundary.
    #[must_use]
    pub fn with_max_bytes(mut self, max: usize) -> Self {
        self.max_bytes = max.max(256);
        self
    }

    /// The link prefix kept live, if any.
    pub fn repo_url(&self) -> Option<&str> {
        self.repo_url.as_deref()
    }

    /// `text` made inert: see the [module docs](self).
    pub fn sanitize(&self, text: &str) -> String {
        let s = strip_invisible(text);
        let s = strip_comments(&s);
        let s = escape_entities(&s);
        let s = escape_tags(&s);
        let s = self.defang_links(&s);
        let s = break_link_syntax(&s);
        let s = break_closing_keywords(&s);
        let s = break_mentions(&s);
        self.cap(s)
    }

    /// True when `url_start` (text starting at a URL scheme) begins with this repository's
    /// URL, followed by a path, query, fragment or the end of the URL.
    fn is_own(&self, url_start: &str) -> bool {
        let Some(prefix) = &self.repo_url else {
            return false;
        };
        let Some(head) = url_start.get(..prefix.len()) else {
            return false;
        };
        head.eq_ignore_ascii_case(prefix)
            && !url_start[prefix.len()..]
                .starts_with(|c: char| c.is_ascii_alphanumeric() || "._-".contains(c))
    }

    /// Every `://` not starting this repository's URL becomes `[:]//`, and every `www.`
    /// outside such a URL becomes `www[.]` (GitHub autolinks both).
    fn defang_links(&self, s: &str) -> String {
        let mut out = String::with_capacity(s.len() + 16);
        // The span of the current own URL, and where its `://` is.
        let mut own_until = 0;
        let mut own_scheme = usize::MAX;
        let mut i = 0;
        while i < s.len() {
            let rest = &s[i..];
            if i >= own_until && starts_with_scheme(rest) && self.is_own(rest) {
                own_until = i + rest
                    .find(|c: char| c.is_whitespace() || c == '<')
                    .unwrap_or(rest.len());
                own_scheme = i + "https".len();
            }
            if rest.starts_with("://") && i != own_scheme {
                out.push_str("[:]//");
                i += 3;
                continue;
            }
            if i >= own_until
                && rest.len() >= 4
                && rest.as_bytes()[..4].eq_ignore_ascii_case(b"www.")
            {
                out.push_str(&rest[..3]);
                out.push_str("[.]");
                i += 4;
                continue;
            }
            // `i` is on a char boundary: it only ever advances by whole chars.
            let Some(c) = rest.chars().next() else { break };
            out.push(c);
            i += c.len_utf8();
        }
        out
    }

    /// Cuts at the last whitespace within the cap, so no token (a URL, an entity, a
    /// neutralized mention) is split.
    fn cap(&self, s: String) -> String {
        if s.len() <= self.max_bytes {
            return s;
        }
        let budget = self.max_bytes.saturating_sub(TRUNCATED.len());
        let mut end = budget;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let cut = s[..end]
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
            .map_or(0, |(i, _)| i);
        let mut out = s[..cut].trim_end().to_owned();
        out.push_str(TRUNCATED);
        out
    }
}

fn starts_with_scheme(s: &str) -> bool {
    s.len() >= 8 && s.as_bytes()[..8].eq_ignore_ascii_case(b"https://")
}

/// Drops ANSI escape sequences, control characters (but newline and tab) and invisible
/// format characters that reorder or hide text (bidi overrides, joiners, BOM). The
/// zero-width space stays: it is what this module inserts, and it only ever breaks a pattern.
fn strip_invisible(text: &str) -> String {
    let text = match ANSI.as_ref() {
        Some(re) => re.replace_all(text, ""),
        None => text.into(),
    };
    text.chars()
        .filter(|&c| {
            c == '\n'
                || c == '\t'
                || !(c.is_control()
                    || matches!(c, '\u{200C}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{00AD}'))
        })
        .collect()
}

/// Removes HTML comments (hidden text; our own issue markers live there), until none is
/// left: removing one may join the halves of another. An unterminated `<!--` is left for
/// [`escape_tags`] to show as text.
fn strip_comments(s: &str) -> String {
    let Some(re) = COMMENT.as_ref() else {
        return s.replace("<!--", "");
    };
    let mut s = s.to_owned();
    while re.is_match(&s) {
        s = re.replace_all(&s, "").into_owned();
    }
    s
}

/// Character references other than `&lt;`, `&gt;`, `&amp;` and `&quot;` get a zero-width
/// space after the `&`: `&#64;` or `&colon;` could otherwise rebuild a mention or a link.
fn escape_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let harmless = ["lt;", "gt;", "amp;", "quot;"]
            .iter()
            .any(|e| rest.starts_with(e));
        if !harmless && rest.starts_with(|c: char| c == '#' || c.is_ascii_alphabetic()) {
            out.push(ZWSP);
        }
    }
    out.push_str(rest);
    out
}

/// `<` opening a tag, a comment, a declaration or an angle autolink becomes `&lt;`.
fn escape_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '<'
            && chars
                .peek()
                .is_some_and(|n| n.is_ascii_alphabetic() || matches!(n, '/' | '!' | '?'))
        {
            out.push_str("&lt;");
        } else {
            out.push(c);
        }
    }
    out
}

/// `](` and `]:` (inline links, images and reference definitions) get a zero-width space.
fn break_link_syntax(s: &str) -> String {
    s.replace("](", "]\u{200B}(").replace("]:", "]\u{200B}:")
}

/// `fixes #12`, `closes o/r#3`, `resolves https://…/issues/4`: a zero-width space before the
/// reference, so pasting the text into a pull request closes nothing.
fn break_closing_keywords(s: &str) -> String {
    let Some(re) = CLOSING.as_ref() else {
        return s.to_owned();
    };
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for m in re.find_iter(s) {
        let text = m.as_str();
        // The reference starts after the keyword's trailing whitespace.
        let ws_end = text
            .char_indices()
            .skip_while(|(_, c)| c.is_alphabetic())
            .find(|(_, c)| !c.is_whitespace() && *c != ':')
            .map_or(text.len(), |(i, _)| i);
        out.push_str(&s[last..m.start() + ws_end]);
        out.push(ZWSP);
        last = m.start() + ws_end;
    }
    out.push_str(&s[last..]);
    out
}

/// `@` followed by a letter or digit (a user, an `@org/team`, an email) gets a zero-width
/// space.
fn break_mentions(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '@' && chars.peek().is_some_and(char::is_ascii_alphanumeric) {
            out.push(ZWSP);
        }
    }
    out
}

/// Checks of the sanitizer's promises, used by its tests and by callers' acceptance tests:
/// each returns the offending fragments of `text` as GitHub would read them.
pub mod check {
    /// Live mentions: `@` directly followed by a letter or digit.
    pub fn live_mentions(text: &str) -> Vec<String> {
        text.match_indices('@')
            .filter_map(|(i, _)| {
                let rest = &text[i + 1..];
                rest.starts_with(|c: char| c.is_ascii_alphanumeric())
                    .then(|| format!("@{}", rest.chars().take(20).collect::<String>()))
            })
            .collect()
    }

    /// Live links whose target is not under `allowed` (`https://github.com/o/r`), and
    /// constructs that could make one: `://` and `www.` outside an allowed URL, markdown link
    /// syntax, HTML tags and character references.
    pub fn foreign_links(text: &str, allowed: Option<&str>) -> Vec<String> {
        let lower = text.to_ascii_lowercase();
        let mut bad = Vec::new();
        let mut allowed_spans: Vec<(usize, usize)> = Vec::new();
        if let Some(prefix) = allowed.map(str::to_ascii_lowercase) {
            for (i, _) in lower.match_indices(&prefix) {
                let after = &lower[i + prefix.len()..];
                if !after.starts_with(|c: char| c.is_ascii_alphanumeric() || "._-".contains(c)) {
                    let end = i
                        + prefix.len()
                        + after
                            .find(|c: char| c.is_whitespace() || c == '<')
                            .unwrap_or(after.len());
                    allowed_spans.push((i, end));
                }
            }
        }
        let inside = |i: usize| allowed_spans.iter().any(|&(a, b)| a <= i && i < b);
        let scheme_ok = |i: usize| allowed_spans.iter().any(|&(a, _)| a + "https".len() == i);
        let snippet = |i: usize| text[i..].chars().take(30).collect::<String>();
        for (i, _) in lower.match_indices("://") {
            if !scheme_ok(i) {
                bad.push(snippet(i));
            }
        }
        for (i, _) in lower.match_indices("www.") {
            if !inside(i) {
                bad.push(snippet(i));
            }
        }
        for pat in ["](", "]:", "<!--"] {
            for (i, _) in text.match_indices(pat) {
                bad.push(snippet(i));
            }
        }
        for (i, _) in text.match_indices('<') {
            if text[i + 1..].starts_with(|c: char| c.is_ascii_alphabetic() || "/!?".contains(c)) {
                bad.push(snippet(i));
            }
        }
        for (i, _) in text.match_indices('&') {
            let rest = &text[i + 1..];
            let harmless = ["lt;", "gt;", "amp;", "quot;"]
                .iter()
                .any(|e| rest.starts_with(e));
            if !harmless && rest.starts_with(|c: char| c == '#' || c.is_ascii_alphabetic()) {
                bad.push(snippet(i));
            }
        }
        bad
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    fn s() -> Sanitizer {
        Sanitizer::for_repo("acme", "widgets")
    }

    fn visible(t: &str) -> String {
        t.replace(ZWSP, "")
    }

    #[test]
    fn mentions_are_neutralized_but_stay_readable() {
        let out = s().sanitize("ping @alice and @acme/admins, mail bob@evil.example");
        assert!(check::live_mentions(&out).is_empty(), "{out:?}");
        assert_eq!(
            visible(&out),
            "ping @alice and @acme/admins, mail bob@evil.example"
        );
        // A stray backtick cannot pair with anything of ours.
        let out = s().sanitize("` @acme/admins");
        assert!(check::live_mentions(&out).is_empty(), "{out:?}");
    }

    #[test]
    fn only_the_repository_links_stay_live() {
        let own = "see https://github.com/acme/widgets/actions/runs/7 and https://GitHub.com/Acme/Widgets#x";
        assert_eq!(s().sanitize(own), own);
        for foreign in [
            "https://evil.example/x",
            "http://github.com/acme/widgets",
            "https://github.com/acme/widgets-evil/x",
            "https://github.com/acme/widgets.evil.example/x",
            "https://github.com@evil.example/",
            "https://github.com/attacker/phish",
            "ftp://evil.example",
            "www.evil.example",
            "[click](//evil.example/x)",
            "![t](https://evil.example/p.png)",
            "[x]: https://evil.example",
            "<https://evil.example>",
            "<img src=https://evil.example/p.png>",
            "https&#58;//evil.example",
            "https&colon;//evil.example",
        ] {
            let out = s().sanitize(foreign);
            let bad = check::foreign_links(&out, s().repo_url());
            assert!(bad.is_empty(), "{foreign} -> {out:?}: {bad:?}");
        }
        assert_eq!(
            s().sanitize("go to https://evil.example/x now"),
            "go to https[:]//evil.example/x now"
        );
        assert_eq!(
            Sanitizer::no_links().sanitize("https://github.com/acme/widgets"),
            "https[:]//github.com/acme/widgets"
        );
    }

    #[test]
    fn comments_and_control_characters_go() {
        let out = s().sanitize(
            "a<!-- flow-telemetry:fingerprint=abc -->b\u{1b}[31mred\u{1b}[0m\u{0}\u{202E}c\r\nd",
        );
        assert_eq!(out, "abredc\nd");
        // Removing one comment must not leave another behind.
        let out = s().sanitize("<!<!-- x -->-- hidden -->");
        assert!(!out.contains("<!--"), "{out:?}");
        // An unterminated comment would hide the rest of the issue: it shows as text.
        assert_eq!(s().sanitize("x <!-- y"), "x &lt;!-- y");
    }

    #[test]
    fn closing_keywords_close_nothing() {
        for text in [
            "fixes #12",
            "Closes: #3",
            "resolved acme/widgets#4",
            "fix https://github.com/acme/widgets/issues/5",
        ] {
            let out = s().sanitize(text);
            assert_ne!(out, text);
            assert_eq!(visible(&out), text);
        }
        assert_eq!(s().sanitize("see #12"), "see #12");
    }

    #[test]
    fn size_is_capped_at_a_word_boundary() {
        let long = "word ".repeat(1000);
        let out = s().with_max_bytes(300).sanitize(&long);
        assert!(out.len() <= 300, "{}", out.len());
        assert!(out.ends_with(TRUNCATED));
        assert!(out.starts_with("word word"));
        assert!(!out.contains("wor\n"), "{out:?}");
        assert_eq!(s().with_max_bytes(300).sanitize(&out), out);
    }

    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("@".to_owned()),
            Just("@acme/admins".to_owned()),
            Just("https://".to_owned()),
            Just("https://github.com/acme/widgets".to_owned()),
            Just("://".to_owned()),
            Just("www.".to_owned()),
            Just("<!--".to_owned()),
            Just("-->".to_owned()),
            Just("<".to_owned()),
            Just("&#".to_owned()),
            Just("&lt;".to_owned()),
            Just("](".to_owned()),
            Just("]:".to_owned()),
            Just("fixes #1".to_owned()),
            Just("`".to_owned()),
            Just("\u{200B}".to_owned()),
            Just("\u{1b}[".to_owned()),
            "[a-z0-9 ./:#@<>!&\\-\\[\\]()\n]{0,6}",
            any::<char>().prop_map(String::from),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn sanitize_is_idempotent_and_leaves_nothing_live(
            parts in prop::collection::vec(fragment(), 0..40),
            max in 256usize..2048,
        ) {
            let input = parts.concat();
            let san = s().with_max_bytes(max);
            let once = san.sanitize(&input);
            prop_assert_eq!(&san.sanitize(&once), &once);
            prop_assert!(once.len() <= max);
            let mentions = check::live_mentions(&once);
            prop_assert!(mentions.is_empty(), "{:?} -> {:?}: {:?}", input, once, mentions);
            let links = check::foreign_links(&once, san.repo_url());
            prop_assert!(links.is_empty(), "{:?} -> {:?}: {:?}", input, once, links);
            prop_assert!(!once.chars().any(|c| c.is_control() && c != '\n' && c != '\t'));
        }
    }
}
