//! `shipgate image resolve`: which image of an index a task runs, as
//! containerd picks it for each host the task may land on.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use shipgate_core::digest::Digest;
use shipgate_core::manifest::{Manifest, Platform};
use shipgate_core::taskdef::TaskDefinition;

use crate::{EcrImageOutput, Format, Unusable, read, read_manifests};

/// The platform to resolve for: `os/arch[/variant]`, or a task definition
/// file whose `runtimePlatform` says it.
fn platform(spec: &str) -> Result<Platform, Unusable> {
    if Path::new(spec).is_file() {
        let td = TaskDefinition::from_json(&read(Path::new(spec))?)
            .map_err(|e| Unusable(format!("{spec}: {e}")))?;
        return Ok(Platform::of_task(&td));
    }
    Platform::parse(spec).map_err(|e| Unusable(format!("--platform: {e}, or a task definition file")))
}

/// Exit 0 when every image has something to run on the platform, 1 when
/// one has not.
pub(crate) fn resolve(manifests: &[PathBuf], spec: &str, format: Format) -> Result<u8, Unusable> {
    let task = platform(spec)?;
    let images = read_manifests(manifests)?;
    let mut out = Vec::new();
    for (image, manifest) in &images {
        out.push(resolve_one(image, manifest, &task)?);
    }
    let runs_nothing = out.iter().any(|i| i["runs"].as_array().is_none_or(Vec::is_empty));
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({"platform": task.to_string(), "images": out}))
                .unwrap_or_default()
        ),
        Format::Text => print!("{}", text(&task, &out)),
    }
    Ok(u8::from(runs_nothing))
}

fn resolve_one(image: &EcrImageOutput, manifest: &Manifest, task: &Platform) -> Result<Value, Unusable> {
    let named = image.image_id.image_digest.as_deref().unwrap_or_default();
    let named = Digest::parse(named).map_err(|e| {
        Unusable(format!(
            "{}: imageId.imageDigest: {e} (ask batch-get-image by digest or tag)",
            image.repository_name
        ))
    })?;
    let hosts: Vec<Value> = manifest
        .picks(&named, task)
        .into_iter()
        .map(|p| {
            json!({
                "host": p.host.to_string(),
                "pulls": p.pulls.as_ref().map(|(d, _)| d.to_string()),
                "platform": p.pulls.as_ref().and_then(|(_, platform)| platform.map(ToString::to_string)),
            })
        })
        .collect();
    let (runs, has) = match manifest.resolve(&named, task) {
        Ok(runs) => (runs.iter().map(ToString::to_string).collect(), Vec::new()),
        Err(has) => (Vec::new(), has.iter().map(ToString::to_string).collect()),
    };
    Ok(json!({
        "repository": image.repository_name,
        "digest": named.to_string(),
        "index": manifest.is_index(),
        "runs": runs,
        "hosts": hosts,
        "platforms": has,
    }))
}

fn text(task: &Platform, images: &[Value]) -> String {
    let mut out = String::new();
    for i in images {
        let name =
            format!("{}@{}", i["repository"].as_str().unwrap_or(""), i["digest"].as_str().unwrap_or(""));
        let runs: Vec<&str> = i["runs"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        if runs.is_empty() {
            let has: Vec<&str> =
                i["platforms"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            out.push_str(&format!("{name}: nothing runs on {task} (it has {})\n", has.join(", ")));
            continue;
        }
        out.push_str(&format!("{name} on {task} runs {}:\n", runs.join(", ")));
        for h in i["hosts"].as_array().into_iter().flatten() {
            let host = h["host"].as_str().unwrap_or("");
            match (h["pulls"].as_str(), h["platform"].as_str()) {
                (Some(d), Some(p)) => out.push_str(&format!("  {host} host pulls {d} ({p})\n")),
                (Some(d), None) => out.push_str(&format!("  {host} host pulls {d}\n")),
                _ => out.push_str(&format!("  {host} host pulls nothing\n")),
            }
        }
    }
    out
}
