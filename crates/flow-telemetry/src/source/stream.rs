//! Streaming, typed ingest of exported run history.
//!
//! Every shape [`parse_runs`](super::file::parse_runs) accepts — REST pages
//! (`{"total_count", "workflow_runs": [...]}`, one page, a JSON array of pages, or pages one after
//! another as `gh api --paginate` writes them), `gh run list --json` arrays, JSON arrays of REST
//! runs, one run or `workflow_run` event object, and NDJSON — is read from any [`Read`] in
//! fixed-size chunks. A structural scanner splits each chunk into *records* (one run object
//! each; the page wrapper is walked, never built), and each record is deserialized straight into
//! a typed wire struct borrowing its strings from the buffer, unknown fields skipped by serde
//! without being built. Records of a chunk are parsed on several threads when asked for, then
//! handed to the caller's callback one at a time, in file order.
//!
//! Memory is the chunk buffer (grown only for a record larger than it) plus one chunk's worth
//! of parsed runs: it does not grow with the file.
//!
//! A malformed record is an error naming its position — `line N` for top-level records
//! (NDJSON), `page P, run I` inside REST pages, `element I` of a top-level array — or, with
//! [`ReadOptions::skip_invalid`], is counted in [`ReadStats`] and skipped.

use std::borrow::Cow;
use std::io::Read;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::error::{Error, ErrorKind, Result};
use crate::model::{Conclusion, Run, RunId, RunStatus, WorkflowId, ts};

/// How to read an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// Count and skip malformed records instead of failing on the first one.
    pub skip_invalid: bool,
    /// Threads parsing the records of a chunk (1 parses on the calling thread).
    pub threads: usize,
    /// Bytes read per chunk (a record larger than that grows the buffer to hold it).
    pub chunk_bytes: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            skip_invalid: false,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(8)),
            chunk_bytes: 4 << 20,
        }
    }
}

impl ReadOptions {
    /// Skips (and counts) malformed records when `yes`.
    #[must_use]
    pub fn skip_invalid(mut self, yes: bool) -> Self {
        self.skip_invalid = yes;
        self
    }

    /// Parses on `threads` threads (at least 1).
    #[must_use]
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Reads `bytes` per chunk (at least 1; small chunks only make sense in tests).
    #[must_use]
    pub fn chunk_bytes(mut self, bytes: usize) -> Self {
        self.chunk_bytes = bytes.max(1);
        self
    }
}

/// Where a record sits in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// A top-level record (NDJSON line, or a lone object), by its 1-based line.
    Line(u64),
    /// Element `index` (from 0) of a top-level JSON array, starting at `line`.
    Element {
        /// Index in the array, from 0.
        index: u64,
        /// 1-based line where the element starts.
        line: u64,
    },
    /// Run `index` (from 0) of the `workflow_runs` of REST page `page` (from 1).
    PageRun {
        /// Page number in the file, from 1.
        page: u64,
        /// Index in the page's `workflow_runs`, from 0.
        index: u64,
        /// 1-based line where the run starts.
        line: u64,
    },
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Line(l) => write!(f, "line {l}"),
            Self::Element { index, line } => {
                write!(f, "element {index} of the array (line {line})")
            }
            Self::PageRun { page, index, line } => {
                write!(
                    f,
                    "page {page}, run {index} of `workflow_runs` (line {line})"
                )
            }
        }
    }
}

/// What a read saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Runs handed to the callback.
    pub runs: u64,
    /// Malformed records skipped (only with [`ReadOptions::skip_invalid`]).
    pub invalid: u64,
    /// The first few skipped records: position and reason.
    pub invalid_examples: Vec<String>,
    /// Bytes read.
    pub bytes: u64,
}

const MAX_EXAMPLES: usize = 5;

// ---------------------------------------------------------------------------------------------
// Typed wire shape: REST and `gh run list --json` fields in one struct, strings borrowed.
// ---------------------------------------------------------------------------------------------

/// `actor`: a user object (only its `login` is kept) or a bare login string.
struct ActorWire<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for ActorWire<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = ActorWire<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a user object or a login")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> std::result::Result<Self::Value, E> {
                Ok(ActorWire(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: serde::de::Error>(
                self,
                v: &str,
            ) -> std::result::Result<Self::Value, E> {
                Ok(ActorWire(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut login = None;
                while let Some(k) = m.next_key::<Cow<'de, str>>()? {
                    if k == "login" {
                        login = m.next_value::<Option<Cow<'de, str>>>()?;
                    } else {
                        m.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(ActorWire(login))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

type Str<'a> = Option<Cow<'a, str>>;

/// One record: a REST run, a `gh run list --json` run, or an event with a `workflow_run`.
#[derive(Deserialize, Default)]
#[serde(default)]
struct RunWire<'a> {
    // REST.
    id: Option<u64>,
    #[serde(borrow)]
    name: Str<'a>,
    workflow_id: Option<u64>,
    #[serde(borrow)]
    path: Str<'a>,
    #[serde(borrow)]
    head_branch: Str<'a>,
    #[serde(borrow)]
    head_sha: Str<'a>,
    #[serde(borrow)]
    event: Str<'a>,
    #[serde(borrow)]
    status: Str<'a>,
    #[serde(borrow)]
    conclusion: Str<'a>,
    run_attempt: Option<u32>,
    run_number: Option<u64>,
    #[serde(borrow)]
    created_at: Str<'a>,
    #[serde(borrow)]
    run_started_at: Str<'a>,
    #[serde(borrow)]
    updated_at: Str<'a>,
    #[serde(borrow)]
    actor: Option<ActorWire<'a>>,
    #[serde(borrow)]
    html_url: Str<'a>,
    runner_error: Option<bool>,
    // `gh run list --json`.
    #[serde(rename = "databaseId")]
    database_id: Option<u64>,
    #[serde(rename = "workflowDatabaseId")]
    workflow_database_id: Option<u64>,
    #[serde(rename = "workflowName", borrow)]
    workflow_name: Str<'a>,
    #[serde(rename = "headBranch", borrow)]
    gh_head_branch: Str<'a>,
    #[serde(rename = "headSha", borrow)]
    gh_head_sha: Str<'a>,
    attempt: Option<u32>,
    number: Option<u64>,
    #[serde(rename = "createdAt", borrow)]
    gh_created_at: Str<'a>,
    #[serde(rename = "startedAt", borrow)]
    gh_started_at: Str<'a>,
    #[serde(rename = "updatedAt", borrow)]
    gh_updated_at: Str<'a>,
    #[serde(borrow)]
    url: Str<'a>,
    // A `workflow_run` event payload wraps the run.
    #[serde(borrow)]
    workflow_run: Option<Box<RunWire<'a>>>,
    // A page whose `workflow_runs` is not an array (the scanner walks real pages).
    workflow_runs: Option<IgnoredAny>,
}

fn owned(s: Str<'_>) -> String {
    s.map(Cow::into_owned).unwrap_or_default()
}

fn time(s: &Str<'_>) -> Option<i64> {
    s.as_deref().and_then(ts::parse_rfc3339_ms)
}

fn conclusion(s: &Str<'_>) -> Option<Conclusion> {
    s.as_deref()
        .filter(|c| !c.is_empty())
        .map(Conclusion::parse)
}

impl RunWire<'_> {
    fn into_run(self) -> std::result::Result<Run, String> {
        if self.workflow_runs.is_some() {
            return Err("`workflow_runs` must be an array of runs".into());
        }
        if let Some(inner) = self.workflow_run {
            return inner.into_run();
        }
        let status = self
            .status
            .as_deref()
            .map(RunStatus::parse)
            .unwrap_or_default();
        let conclusion = conclusion(&self.conclusion);
        if self.database_id.is_some() || self.workflow_name.is_some() {
            // `gh run list --json` shape.
            return Ok(Run {
                id: RunId(self.database_id.unwrap_or_default()),
                name: owned(self.workflow_name.or(self.name)),
                workflow_id: WorkflowId(self.workflow_database_id.unwrap_or_default()),
                path: String::new(),
                head_branch: owned(self.gh_head_branch),
                head_sha: owned(self.gh_head_sha),
                event: owned(self.event),
                status,
                conclusion,
                run_attempt: self.attempt.unwrap_or(1).max(1),
                run_number: self.number.unwrap_or_default(),
                created_at: time(&self.gh_created_at),
                run_started_at: time(&self.gh_started_at),
                updated_at: time(&self.gh_updated_at),
                actor: None,
                html_url: owned(self.url),
                runner_error: false,
            });
        }
        Ok(Run {
            id: RunId(self.id.unwrap_or_default()),
            name: owned(self.name),
            workflow_id: WorkflowId(self.workflow_id.unwrap_or_default()),
            path: owned(self.path),
            head_branch: owned(self.head_branch),
            head_sha: owned(self.head_sha),
            event: owned(self.event),
            status,
            conclusion,
            run_attempt: self.run_attempt.unwrap_or(1).max(1),
            run_number: self.run_number.unwrap_or_default(),
            created_at: time(&self.created_at),
            run_started_at: time(&self.run_started_at),
            updated_at: time(&self.updated_at),
            actor: self.actor.and_then(|a| a.0).map(Cow::into_owned),
            html_url: owned(self.html_url),
            runner_error: self.runner_error.unwrap_or(false),
        })
    }
}

/// Parses one record (a run object, `gh` run object or `workflow_run` event) from its bytes.
///
/// # Errors
/// The reason, as text, when the bytes are not such an object.
pub fn parse_record(bytes: &[u8]) -> std::result::Result<Run, String> {
    let wire: RunWire<'_> = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    wire.into_run()
}

// ---------------------------------------------------------------------------------------------
// Structural scanner.
// ---------------------------------------------------------------------------------------------

/// Where the scanner is between records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// Top level: NDJSON records, lone objects, pages one after another.
    Top,
    /// Inside a top-level array, before element `index` (or its separator).
    Array { index: u64, need_sep: bool },
    /// Inside the `workflow_runs` array of page `page`, before run `index`.
    PageRuns {
        page: u64,
        index: u64,
        need_sep: bool,
        in_array: Option<u64>,
    },
    /// After a page's `workflow_runs`: the page's remaining keys.
    PageTail { in_array: Option<u64> },
}

/// A record found by the scanner: its byte range in the buffer and its position (line 0 until
/// resolved).
#[derive(Debug, Clone, Copy)]
struct Unit {
    start: usize,
    end: usize,
    pos: Position,
    /// A structural problem found while scanning (the record is reported invalid).
    broken: Option<&'static str>,
}

enum Step {
    /// Consumed up to the offset, maybe yielding a record.
    Advance(usize, Option<Unit>),
    /// The buffer ends before the next step completes.
    NeedMore,
    /// A fatal structural error at the offset.
    Fatal(usize, String),
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn skip_ws(buf: &[u8], mut i: usize) -> usize {
    while i < buf.len() && is_ws(buf[i]) {
        i += 1;
    }
    i
}

/// End (exclusive) of the string starting at `buf[i] == b'"'`.
fn string_end(buf: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        let k = j + memchr::memchr2(b'"', b'\\', buf.get(j..)?)?;
        if buf[k] == b'"' {
            return Some(k + 1);
        }
        // A backslash escapes the next byte.
        j = k + 2;
        if j > buf.len() {
            return None;
        }
    }
}

/// End (exclusive) of the JSON value starting at `buf[i]` (not whitespace), found by counting
/// brackets outside strings; `None` when the buffer ends first. Not a validator: the record's
/// parser is.
fn value_end(buf: &[u8], i: usize, eof: bool) -> Option<usize> {
    match buf.get(i)? {
        b'"' => string_end(buf, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < buf.len() {
                match buf[j] {
                    b'"' => {
                        j = string_end(buf, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < buf.len() && !matches!(buf[j], b',' | b']' | b'}' | b'{' | b'[' | b'"') {
                if is_ws(buf[j]) {
                    return Some(j);
                }
                j += 1;
            }
            (j < buf.len() || eof).then_some(j)
        }
    }
}

/// Outcome of looking into an object at record level.
enum ObjectScan {
    /// A plain record ending at the offset.
    Record(usize),
    /// A REST page: its `workflow_runs` array opens just before the offset.
    Page(usize),
    /// Not a well-formed object head: the balanced value ends at the offset.
    Broken(usize, &'static str),
}

/// Walks the keys of the object at `buf[i] == b'{'` to tell a page from a record.
fn scan_object(buf: &[u8], i: usize, eof: bool) -> Option<ObjectScan> {
    let broken = |why: &'static str| value_end(buf, i, eof).map(|e| ObjectScan::Broken(e, why));
    let mut j = skip_ws(buf, i + 1);
    if *buf.get(j)? == b'}' {
        return Some(ObjectScan::Record(j + 1));
    }
    loop {
        if *buf.get(j)? != b'"' {
            return broken("expected a quoted key");
        }
        let key_end = string_end(buf, j)?;
        let key = &buf[j + 1..key_end - 1];
        j = skip_ws(buf, key_end);
        if *buf.get(j)? != b':' {
            return broken("expected `:` after a key");
        }
        j = skip_ws(buf, j + 1);
        let first = *buf.get(j)?;
        if key == b"workflow_runs" && first == b'[' {
            return Some(ObjectScan::Page(j + 1));
        }
        j = skip_ws(buf, value_end(buf, j, eof)?);
        match *buf.get(j)? {
            b',' => j = skip_ws(buf, j + 1),
            b'}' => return Some(ObjectScan::Record(j + 1)),
            _ => return broken("expected `,` or `}` after a value"),
        }
    }
}

/// The scanner's state across chunks.
#[derive(Debug)]
struct Scanner {
    ctx: Ctx,
    pages: u64,
}

impl Scanner {
    fn new() -> Self {
        Self {
            ctx: Ctx::Top,
            pages: 0,
        }
    }

    /// One step from `i` (after whitespace).
    fn step(&mut self, buf: &[u8], i: usize, eof: bool) -> Step {
        let i = skip_ws(buf, i);
        let Some(&b) = buf.get(i) else {
            return Step::NeedMore;
        };
        match self.ctx {
            Ctx::Top => match b {
                b'[' => {
                    self.ctx = Ctx::Array {
                        index: 0,
                        need_sep: false,
                    };
                    Step::Advance(i + 1, None)
                }
                b'{' => self.object(buf, i, eof, Position::Line(0), None),
                _ => {
                    // Not an object: the rest of the line is one bad record.
                    let end = memchr::memchr(b'\n', &buf[i..]).map(|k| i + k);
                    match end {
                        Some(e) => Step::Advance(e, Some(unit(i, e, Position::Line(0)))),
                        None if eof => {
                            Step::Advance(buf.len(), Some(unit(i, buf.len(), Position::Line(0))))
                        }
                        None => Step::NeedMore,
                    }
                }
            },
            Ctx::Array { index, need_sep } => {
                if b == b']' {
                    self.ctx = Ctx::Top;
                    return Step::Advance(i + 1, None);
                }
                if need_sep {
                    return if b == b',' {
                        self.ctx = Ctx::Array {
                            index,
                            need_sep: false,
                        };
                        Step::Advance(i + 1, None)
                    } else {
                        Step::Fatal(
                            i,
                            format!("expected `,` or `]` after element {}", index - 1),
                        )
                    };
                }
                let pos = Position::Element { index, line: 0 };
                if b == b'{' {
                    return self.object(buf, i, eof, pos, Some(index));
                }
                match value_end(buf, i, eof) {
                    Some(e) if e == i => {
                        Step::Fatal(i, format!("unexpected `{}` in the array", char::from(b)))
                    }
                    Some(e) => {
                        self.ctx = Ctx::Array {
                            index: index + 1,
                            need_sep: true,
                        };
                        Step::Advance(e, Some(unit(i, e, pos)))
                    }
                    None => Step::NeedMore,
                }
            }
            Ctx::PageRuns {
                page,
                index,
                need_sep,
                in_array,
            } => {
                if b == b']' {
                    self.ctx = Ctx::PageTail { in_array };
                    return Step::Advance(i + 1, None);
                }
                if need_sep {
                    return if b == b',' {
                        self.ctx = Ctx::PageRuns {
                            page,
                            index,
                            need_sep: false,
                            in_array,
                        };
                        Step::Advance(i + 1, None)
                    } else {
                        Step::Fatal(
                            i,
                            format!("page {page}: expected `,` or `]` after run {}", index - 1),
                        )
                    };
                }
                match value_end(buf, i, eof) {
                    Some(e) if e == i => Step::Fatal(
                        i,
                        format!(
                            "page {page}: unexpected `{}` in `workflow_runs`",
                            char::from(b)
                        ),
                    ),
                    Some(e) => {
                        self.ctx = Ctx::PageRuns {
                            page,
                            index: index + 1,
                            need_sep: true,
                            in_array,
                        };
                        let pos = Position::PageRun {
                            page,
                            index,
                            line: 0,
                        };
                        Step::Advance(e, Some(unit(i, e, pos)))
                    }
                    None => Step::NeedMore,
                }
            }
            Ctx::PageTail { in_array } => match b {
                b'}' => {
                    self.ctx = match in_array {
                        Some(index) => Ctx::Array {
                            index: index + 1,
                            need_sep: true,
                        },
                        None => Ctx::Top,
                    };
                    Step::Advance(i + 1, None)
                }
                b',' => {
                    // `, "key": value` of the page.
                    let j = skip_ws(buf, i + 1);
                    let Some(&q) = buf.get(j) else {
                        return Step::NeedMore;
                    };
                    if q != b'"' {
                        return Step::Fatal(j, "expected a quoted key in the page".into());
                    }
                    let Some(k) = string_end(buf, j) else {
                        return Step::NeedMore;
                    };
                    let k = skip_ws(buf, k);
                    match buf.get(k) {
                        None => Step::NeedMore,
                        Some(b':') => {
                            let v = skip_ws(buf, k + 1);
                            if v >= buf.len() {
                                return Step::NeedMore;
                            }
                            match value_end(buf, v, eof) {
                                Some(e) if e == v => {
                                    Step::Fatal(v, "expected a value in the page".into())
                                }
                                Some(e) => Step::Advance(e, None),
                                None => Step::NeedMore,
                            }
                        }
                        Some(_) => Step::Fatal(k, "expected `:` after a key in the page".into()),
                    }
                }
                _ => Step::Fatal(i, "expected `,` or `}` in the page".into()),
            },
        }
    }

    fn object(
        &mut self,
        buf: &[u8],
        i: usize,
        eof: bool,
        pos: Position,
        in_array: Option<u64>,
    ) -> Step {
        let after = |index: u64| Ctx::Array {
            index: index + 1,
            need_sep: true,
        };
        match scan_object(buf, i, eof) {
            None => Step::NeedMore,
            Some(ObjectScan::Page(next)) => {
                self.pages += 1;
                self.ctx = Ctx::PageRuns {
                    page: self.pages,
                    index: 0,
                    need_sep: false,
                    in_array,
                };
                Step::Advance(next, None)
            }
            Some(ObjectScan::Record(end)) => {
                self.ctx = in_array.map_or(Ctx::Top, after);
                Step::Advance(end, Some(unit(i, end, pos)))
            }
            Some(ObjectScan::Broken(end, why)) => {
                self.ctx = in_array.map_or(Ctx::Top, after);
                let mut u = unit(i, end, pos);
                u.broken = Some(why);
                Step::Advance(end, Some(u))
            }
        }
    }

    /// True when the input may end here.
    fn at_rest(&self) -> bool {
        self.ctx == Ctx::Top
    }
}

fn unit(start: usize, end: usize, pos: Position) -> Unit {
    Unit {
        start,
        end,
        pos,
        broken: None,
    }
}

fn with_line(pos: Position, line: u64) -> Position {
    match pos {
        Position::Line(_) => Position::Line(line),
        Position::Element { index, .. } => Position::Element { index, line },
        Position::PageRun { page, index, .. } => Position::PageRun { page, index, line },
    }
}

fn count_lines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

fn parse_units(
    buf: &[u8],
    units: &[Unit],
    threads: usize,
) -> Vec<std::result::Result<Run, String>> {
    let one = |u: &Unit| match u.broken {
        Some(why) => Err(why.to_string()),
        None => parse_record(&buf[u.start..u.end]),
    };
    if threads <= 1 || units.len() < 64 {
        return units.iter().map(one).collect();
    }
    let per = units.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = units
            .chunks(per)
            .map(|part| s.spawn(move || part.iter().map(one).collect::<Vec<_>>()))
            .collect();
        let mut out = Vec::with_capacity(units.len());
        for (h, part) in handles.into_iter().zip(units.chunks(per)) {
            match h.join() {
                Ok(v) => out.extend(v),
                // A parser thread cannot panic on input; should it, parse its share here.
                Err(_) => out.extend(part.iter().map(one)),
            }
        }
        out
    })
}

/// Reads every run of an export from `reader`, handing each to `f` in file order.
///
/// # Errors
/// [`ErrorKind::Io`] when reading fails; [`ErrorKind::Parse`] naming the position of the first
/// malformed record (unless [`ReadOptions::skip_invalid`]), or of a broken structure (an
/// unterminated array or page, a missing separator) — those are never skipped.
pub fn read_runs<R: Read>(
    mut reader: R,
    opts: &ReadOptions,
    mut f: impl FnMut(Run),
) -> Result<ReadStats> {
    let chunk = opts.chunk_bytes.max(1);
    let mut buf: Vec<u8> = Vec::with_capacity(chunk);
    let mut scanner = Scanner::new();
    let mut stats = ReadStats::default();
    // Line of `buf[0]`, and a cursor counting lines up to `line_at`.
    let mut base_line = 1u64;
    let mut units = Vec::new();
    let mut eof = false;
    let mut pos = 0usize;
    loop {
        // Refill: keep the unconsumed tail, read up to one more chunk.
        if !eof {
            let want = buf.len() + chunk;
            let mut filled = buf.len();
            buf.resize(want, 0);
            while filled < want {
                match reader.read(&mut buf[filled..]) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        return Err(Error::new(ErrorKind::Io {
                            path: "input".into(),
                            detail: e.to_string(),
                        }));
                    }
                }
            }
            stats.bytes += (filled - (want - chunk)) as u64;
            buf.truncate(filled);
        }
        // Scan.
        units.clear();
        loop {
            match scanner.step(&buf, pos, eof) {
                Step::Advance(next, u) => {
                    pos = next;
                    if let Some(u) = u {
                        units.push(u);
                    }
                }
                Step::NeedMore => break,
                Step::Fatal(at, why) => {
                    let line = base_line + count_lines(&buf[..at.min(buf.len())]);
                    return Err(Error::parse(format!("line {line}"), why));
                }
            }
        }
        // Parse and hand over.
        let results = parse_units(&buf, &units, opts.threads);
        let mut cursor = (0usize, base_line);
        for (u, r) in units.iter().zip(results) {
            match r {
                Ok(run) => {
                    stats.runs += 1;
                    f(run);
                }
                Err(why) => {
                    cursor.1 += count_lines(&buf[cursor.0..u.start]);
                    cursor.0 = u.start;
                    let at = with_line(u.pos, cursor.1);
                    if !opts.skip_invalid {
                        return Err(Error::parse(at.to_string(), why));
                    }
                    stats.invalid += 1;
                    if stats.invalid_examples.len() < MAX_EXAMPLES {
                        stats.invalid_examples.push(format!("{at}: {why}"));
                    }
                }
            }
        }
        if eof {
            let rest = skip_ws(&buf, pos);
            if rest < buf.len() || !scanner.at_rest() {
                let line = base_line + count_lines(&buf[..rest.min(buf.len())]);
                return Err(Error::parse(
                    format!("line {line}"),
                    "the file ends inside an array, a page or a record",
                ));
            }
            return Ok(stats);
        }
        // Drop what was consumed.
        base_line += count_lines(&buf[..pos]);
        buf.drain(..pos);
        pos = 0;
    }
}

/// Reads every run of an export held in memory (see [`read_runs`]).
///
/// # Errors
/// As [`read_runs`].
pub fn read_runs_from_slice(
    bytes: &[u8],
    opts: &ReadOptions,
    f: impl FnMut(Run),
) -> Result<ReadStats> {
    read_runs(bytes, opts, f)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn all(text: &str) -> Result<Vec<Run>> {
        let mut v = Vec::new();
        read_runs(text.as_bytes(), &ReadOptions::default().threads(1), |r| {
            v.push(r)
        })?;
        Ok(v)
    }

    #[test]
    fn reads_every_shape() {
        let run = r#"{"id":1,"name":"CI","status":"completed","conclusion":"success","repository":{"id":5,"x":[1,{"y":"}"}]}}"#;
        let page = format!(r#"{{"total_count":2,"workflow_runs":[{run},{run}]}}"#);
        assert_eq!(all(run).unwrap().len(), 1);
        assert_eq!(all(&page).unwrap().len(), 2);
        assert_eq!(all(&format!("[{page},\n{page}]")).unwrap().len(), 4);
        assert_eq!(all(&format!("{page}{page}\n{page}")).unwrap().len(), 6);
        assert_eq!(all(&format!("[{run},{run}]")).unwrap().len(), 2);
        assert_eq!(all(&format!("{run}\n\n{run}\n")).unwrap().len(), 2);
        assert_eq!(
            all(&format!(r#"{{"action":"completed","workflow_run":{run}}}"#)).unwrap()[0].id,
            RunId(1)
        );
        assert_eq!(all("").unwrap().len(), 0);
        assert_eq!(all("[]").unwrap().len(), 0);
    }

    #[test]
    fn positions_are_named() {
        let err = all("{\"id\":1}\n\nnot json\n").unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        let err = all("{\"workflow_runs\":[{\"id\":1},\n{\"id\":\"x\"}]}").unwrap_err();
        assert!(err.to_string().contains("page 1, run 1"), "{err}");
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = all("[{\"id\":1},{\"id\":1} {\"id\":2}]").unwrap_err();
        assert!(
            err.to_string()
                .contains("expected `,` or `]` after element 1"),
            "{err}"
        );
        let err = all("[{\"id\":1}").unwrap_err();
        assert!(err.to_string().contains("ends inside"), "{err}");
    }

    #[test]
    fn skip_invalid_counts() {
        let mut v = Vec::new();
        let stats = read_runs(
            "{\"id\":1}\nnope\n{\"id\":true}\n{\"id\":2}\n".as_bytes(),
            &ReadOptions::default().skip_invalid(true),
            |r| v.push(r.id.0),
        )
        .unwrap();
        assert_eq!(v, [1, 2]);
        assert_eq!(stats.invalid, 2);
        assert!(
            stats.invalid_examples[0].starts_with("line 2"),
            "{:?}",
            stats.invalid_examples
        );
        assert!(
            stats.invalid_examples[1].starts_with("line 3"),
            "{:?}",
            stats.invalid_examples
        );
    }

    #[test]
    fn records_straddling_chunks_are_whole() {
        let run = format!(r#"{{"id":7,"name":"{}"}}"#, "x".repeat(1000));
        let page = format!(
            r#"{{"total_count":1,"workflow_runs":[{}]}}"#,
            vec![run; 300].join(",")
        );
        let text = format!("[{page},{page}]");
        let mut n = 0;
        read_runs(
            text.as_bytes(),
            &ReadOptions::default().chunk_bytes(4096).threads(2),
            |r| {
                assert_eq!(r.name.len(), 1000);
                n += 1;
            },
        )
        .unwrap();
        assert_eq!(n, 600);
    }
}
