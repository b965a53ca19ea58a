//! `flow config`: the effective settings and where each came from.

use std::fmt::Write as _;

use serde_json::json;

use crate::cli::ConfigArgs;
use crate::report::Outcome;
use crate::settings::Ctx;

pub(crate) fn config(args: &ConfigArgs, ctx: &Ctx<'_>) -> anyhow::Result<Outcome> {
    let settings = ctx.settings()?;
    let entries: Vec<_> = settings
        .entries()
        .into_iter()
        .filter(|e| args.only.r#for.is_none_or(|c| c.uses(e.key)))
        .collect();
    let mut text = String::new();
    match &settings.file {
        Some((path, origin)) => {
            let _ = writeln!(text, "configuration file: {} ({origin})", path.display());
        }
        None => text.push_str("configuration file: none\n"),
    }
    let width = entries.iter().map(|e| e.key.len()).max().unwrap_or(0);
    for e in &entries {
        let value = match &e.value {
            serde_json::Value::Null => "-".to_owned(),
            serde_json::Value::String(s) => s.clone(),
            v if e.key == "telemetry.rules" && v.is_object() => "(rules)".to_owned(),
            v => v.to_string(),
        };
        let _ = writeln!(text, "{:<width$}  {value}  ({})", e.key, e.origin);
    }
    if args
        .only
        .r#for
        .is_none_or(|c| c == crate::cli::ConfigFor::Monitor)
    {
        let _ = writeln!(
            text,
            "monitor triage: {}",
            match (settings.triage(), settings.config.telemetry.triage) {
                (true, _) => "on",
                (false, Some(false)) => "off (telemetry.triage)",
                (false, _) => "off (no LLM configured explicitly)",
            }
        );
    }
    let file = settings
        .file
        .as_ref()
        .map(|(p, o)| json!({"path": p.display().to_string(), "origin": o}));
    let summary = format!("### flow config\n\n```\n{text}```\n");
    Ok(Outcome {
        json: json!({
            "file": file,
            "settings": entries,
            "triage": settings.triage(),
        }),
        text,
        summary: Some(summary),
        ..Outcome::default()
    })
}
