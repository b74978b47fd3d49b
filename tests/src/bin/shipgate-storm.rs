//! `make storm` (and the end of `make bench`): one CVE flips 200 running
//! images across 5 owners, through the emulator, each function as its role
//! and at most as many invocations at once as its reserved concurrency.
//! Prints what happened and writes it into `bench/README.md` between the
//! storm markers. `SHIPGATE_STORM=owners x services` changes the size.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use shipgate_tests::exposure::{Storm, StormReport, World, at, storm};

const BEGIN: &str = "<!-- storm: written by `make storm` (tests/src/bin/shipgate-storm.rs) -->";
const END: &str = "<!-- /storm -->";

fn size() -> Storm {
    let spec = std::env::var("SHIPGATE_STORM").unwrap_or_else(|_| "5x40".into());
    let (owners, per_owner) = spec.split_once('x').expect("SHIPGATE_STORM is OWNERSxSERVICES, e.g. 5x40");
    Storm { owners: owners.trim().parse().unwrap(), per_owner: per_owner.trim().parse().unwrap() }
}

fn section(r: &StormReport) -> String {
    let per_image = r.wall.as_secs_f64() * 1000.0 / r.images.max(1) as f64;
    format!(
        "{BEGIN}\n## Exposure storm\n\n\
         One CVE lands on {images} running images of {owners} owners at once (`make storm`): Inspector sends a\n\
         finding per image, scan-gate re-judges each (at most 20 at once, its reserved concurrency), the notifier\n\
         gathers every flip (at most 10 at once) and its schedule sends the digests when the window closes.\n\
         Through the emulator, each function as its role; a failed invocation is retried as Lambda retries\n\
         asynchronous ones (twice).\n\n\
         | what | figure |\n|---|---|\n\
         | running images flipped (announced once each) | {flips} of {images} |\n\
         | messages people received | {messages} ({owners} owners, one digest each) |\n\
         | invocations: scan-gate / notifier (incl. the schedule) | {scan} / {notify} |\n\
         | invocations retried / failed for good | {retried} / {failed} |\n\
         | writes to the config bucket / lost a compare-and-swap race and were decided again | {writes} / {races} |\n\
         | wall time, first finding to last digest sent (the window's wait excluded) | {wall:.1} s ({per_image:.0} ms per image) |\n\
         | setup (policies, scans, {images} deployments recorded) | {setup:.1} s |\n\n\
         The races are the notifier's: every flip of one owner lands in that owner's window object. Each lost race\n\
         re-reads after a jittered backoff and decides again, and every flip ends up in its window exactly once\n\
         (`tests/tests/exposure.rs` holds that at a smaller size). Against AWS the wall time is set by S3 and\n\
         EventBridge latency rather than by the emulator, which answers one request at a time.\n{END}\n",
        images = r.images,
        owners = r.owners,
        flips = r.flips,
        messages = r.messages,
        scan = r.scan_gate_invocations,
        notify = r.notifier_invocations,
        retried = r.retried_invocations,
        failed = r.failed_invocations,
        writes = r.writes,
        races = r.lost_races,
        wall = r.wall.as_secs_f64(),
        setup = r.setup.as_secs_f64(),
    )
}

#[tokio::main]
async fn main() {
    let size = size();
    eprintln!("storm: {} owners x {} services; setting up...", size.owners, size.per_owner);
    let world = World::start().await;
    let report = storm(&world, size, at("2026-11-28T10:00:00Z")).await;
    let text = section(&report);
    println!("{text}");
    let path = shipgate_tests::workspace_root().join("bench/README.md");
    let readme = std::fs::read_to_string(&path).unwrap_or_default();
    let kept = match (readme.find(BEGIN), readme.find(END)) {
        (Some(begin), Some(end)) if begin < end => {
            format!("{}{}{}", &readme[..begin], text.trim_end(), &readme[end + END.len()..])
        }
        _ => format!("{}\n\n{}", readme.trim_end(), text),
    };
    std::fs::write(&path, kept).unwrap();
    eprintln!("storm: wrote {}", path.display());
    let ok =
        report.flips == report.images && report.messages == report.owners && report.failed_invocations == 0;
    if !ok {
        eprintln!("storm: expected every image flipped once, one message per owner, no invocation failed");
        std::process::exit(1);
    }
}
