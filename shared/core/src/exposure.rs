//! Exposure: which images run where, and whether they pass today's policy.
//!
//! A completed deployment records what each of its containers runs
//! ([`RunningService`], at [`running_key`]); the digests are indexed
//! ([`digest_index_key`]) so a finding on one image finds the services that
//! run it without reading every record. Re-judging an image ([`rejudge`])
//! against today's findings and policy yields a new [`Exposure`] only when
//! something changed; a change of status (passing to failing or back) is a
//! flip, numbered (`seq`), announced once as [`ExposureChanged`]. The
//! notifier gathers flips into one [`ExposureWindow`] per owner per window,
//! so a CVE that flips two hundred images sends each owner one digest.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::digest::ImageDigest;
use crate::scan::{ScanVerdict, Verdict};

/// Where running records live; [`DIGEST_INDEX_PREFIX`] is beside it, not in it.
pub const RUNNING_PREFIX: &str = "running/";
pub const DIGEST_INDEX_PREFIX: &str = "running-by-digest/";
/// Where the notifier keeps its windows.
pub const WINDOW_PREFIX: &str = "state/notifier/exposure/";
/// How many blocking reasons a record keeps (a message shows fewer).
const BLOCKING_KEPT: usize = 10;

/// The record of a service's running images: `running/<environment>/<service>.json`
/// (`_base` without an environment).
pub fn running_key(environment: Option<&str>, service: &str) -> String {
    format!("{RUNNING_PREFIX}{}/{service}.json", environment.unwrap_or("_base"))
}

/// The services (running keys) that run `digest`.
pub fn digest_index_key(digest: &ImageDigest) -> String {
    format!("{DIGEST_INDEX_PREFIX}{digest}.json")
}

/// `<cluster>/<service>` from an ECS service ARN
/// (`arn:aws:ecs:<region>:<account>:service/<cluster>/<service>`).
pub fn service_of_arn(arn: &str) -> Option<String> {
    let (_, path) = arn.split_once(":service/")?;
    let (cluster, service) = path.split_once('/')?;
    (!cluster.is_empty() && !service.is_empty() && !service.contains('/'))
        .then(|| format!("{cluster}/{service}"))
}

/// What one service runs since its last completed deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningService {
    /// The deploy-hooks environment (`None`: the base policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// `<cluster>/<service>` (ECS), or `<application>/<deployment group>`
    /// when CodeDeploy does not name the service.
    pub service: String,
    /// The CodeDeploy deployment id or the ECS service deployment ARN.
    pub deployment: String,
    /// When the deployment completed: a record only replaces an older one.
    pub deployed_at: DateTime<Utc>,
    pub images: Vec<RunningImage>,
}

/// One container's image as it runs: `digest` is an image the task runs
/// (for an index, one container has an entry per image a host of the task's
/// platform may pull), which is what Inspector scans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningImage {
    pub container: String,
    /// The image as the task definition names it.
    pub image: String,
    pub repository: String,
    pub digest: ImageDigest,
    #[serde(default)]
    pub exposure: Exposure,
}

impl RunningService {
    pub fn key(&self) -> String {
        running_key(self.environment.as_deref(), &self.service)
    }

    /// True when this record should replace `stored`: a later deployment.
    /// The same deployment recorded again (a redelivered event) does not,
    /// so what was judged since stays.
    pub fn replaces(&self, stored: &RunningService) -> bool {
        self.deployment != stored.deployment && self.deployed_at >= stored.deployed_at
    }

    /// This record, keeping what `stored` knew of the images both run: a
    /// redeploy of the same digest is not a new image, and its exposure (and
    /// whether that was announced) carries over.
    pub fn carrying_over(mut self, stored: Option<&RunningService>) -> Self {
        if let Some(stored) = stored {
            for image in &mut self.images {
                if let Some(before) = stored.images.iter().find(|i| i.digest == image.digest) {
                    image.exposure = before.exposure.clone();
                }
            }
        }
        self
    }

    pub fn digests(&self) -> BTreeSet<&ImageDigest> {
        self.images.iter().map(|i| &i.digest).collect()
    }
}

/// Whether a running image passes today's policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExposureStatus {
    /// Passing: what a deployment implies (it passed its gate).
    #[default]
    Passing,
    /// Failing today's policy: exposed.
    Failing,
}

impl ExposureStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExposureStatus::Passing => "passing",
            ExposureStatus::Failing => "failing",
        }
    }
}

/// An exception that lets a finding through, until it expires.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Accepted {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// The last day the exception is in force.
    pub expires: NaiveDate,
}

/// The last judgement of a running image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exposure {
    pub status: ExposureStatus,
    /// The number of flips so far: the flip's identity in its announcement.
    #[serde(default)]
    pub seq: u32,
    /// When the current status began (`None`: since the deployment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judged_at: Option<DateTime<Utc>>,
    /// What fails it (failing only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocking: Vec<String>,
    /// The exceptions it passes by (passing only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted: Vec<Accepted>,
    /// The policy's owner when judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_key: Option<String>,
    /// Whether the flip to this status went out as `Shipgate Exposure Changed`.
    pub announced: bool,
}

impl Default for Exposure {
    /// A freshly deployed image: passing, and nothing to announce.
    fn default() -> Self {
        Self {
            status: ExposureStatus::Passing,
            seq: 0,
            since: None,
            judged_at: None,
            blocking: Vec::new(),
            accepted: Vec::new(),
            owner: None,
            policy_key: None,
            announced: true,
        }
    }
}

/// What today's judgement of an image says, with who owns its policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged<'a> {
    pub verdict: &'a ScanVerdict,
    pub owner: Option<&'a str>,
    pub policy_key: Option<&'a str>,
}

/// The image's exposure after today's judgement, or `None` when nothing
/// worth writing changed (a scan still running changes nothing, and a
/// judgement made before the one recorded never replaces it: the slow
/// all-images re-judge may apply after a finding's own, later one). A change of
/// status is a flip: the next `seq`, `since` now, to be announced. A change
/// within a status (another blocking finding, an exception renewed to a new
/// date) is recorded without a flip.
pub fn rejudge(current: &Exposure, judged: &Judged<'_>, now: DateTime<Utc>) -> Option<Exposure> {
    if current.judged_at.is_some_and(|recorded| recorded > now) {
        return None;
    }
    let verdict = judged.verdict;
    let (status, blocking, accepted) = match verdict.verdict {
        Verdict::Pending => return None,
        Verdict::Fail => (
            ExposureStatus::Failing,
            verdict.violations.iter().take(BLOCKING_KEPT).map(|v| v.message.clone()).collect(),
            Vec::new(),
        ),
        Verdict::Pass => (ExposureStatus::Passing, Vec::new(), accepted(verdict)),
    };
    let owner = judged.owner.map(str::to_owned);
    let policy_key = judged.policy_key.map(str::to_owned);
    if status == current.status {
        let same = blocking == current.blocking
            && accepted == current.accepted
            && owner == current.owner
            && policy_key == current.policy_key;
        return (!same).then(|| Exposure {
            judged_at: Some(now),
            blocking,
            accepted,
            owner,
            policy_key,
            ..current.clone()
        });
    }
    Some(Exposure {
        status,
        seq: current.seq + 1,
        since: Some(now),
        judged_at: Some(now),
        blocking,
        accepted,
        owner,
        policy_key,
        announced: false,
    })
}

/// The exceptions a passing verdict relies on, each once, soonest to expire first.
fn accepted(verdict: &ScanVerdict) -> Vec<Accepted> {
    let mut accepted: Vec<Accepted> = verdict
        .excepted
        .iter()
        .map(|f| Accepted {
            id: f.exception.id.to_string(),
            package: f.exception.package.as_deref().map(str::to_owned),
            expires: f.exception.expires,
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    accepted.sort_by(|a, b| a.expires.cmp(&b.expires).then_with(|| a.id.cmp(&b.id)));
    accepted
}

/// The `Shipgate Exposure Changed` event's detail: one flip of one running image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExposureChanged {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    pub service: String,
    pub container: String,
    pub image: String,
    pub repository: String,
    pub digest: ImageDigest,
    pub status: ExposureStatus,
    pub seq: u32,
    pub since: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocking: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted: Vec<Accepted>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_key: Option<String>,
}

impl ExposureChanged {
    /// The flip of `image` in `service`, when its exposure is one to announce.
    pub fn of(service: &RunningService, image: &RunningImage) -> Option<Self> {
        let e = &image.exposure;
        (!e.announced && e.seq > 0).then(|| Self {
            environment: service.environment.clone(),
            service: service.service.clone(),
            container: image.container.clone(),
            image: image.image.clone(),
            repository: image.repository.clone(),
            digest: image.digest.clone(),
            status: e.status,
            seq: e.seq,
            since: e.since.unwrap_or(service.deployed_at),
            blocking: e.blocking.clone(),
            accepted: e.accepted.clone(),
            owner: e.owner.clone(),
            policy_key: e.policy_key.clone(),
        })
    }

    /// Which image in which service: a later flip of it replaces an earlier.
    pub fn subject(&self) -> (Option<&str>, &str, &str, &ImageDigest) {
        (self.environment.as_deref(), &self.service, &self.container, &self.digest)
    }

    /// Unique per flip: the same flip delivered again has the same id.
    pub fn id(&self) -> String {
        format!(
            "{}/{}/{}/{}/{}",
            self.environment.as_deref().unwrap_or("_base"),
            self.service,
            self.container,
            self.digest,
            self.seq
        )
    }

    /// Who hears of it.
    pub fn owner(&self) -> &str {
        self.owner.as_deref().unwrap_or(UNOWNED)
    }
}

/// The owner of flips whose policy names none.
pub const UNOWNED: &str = "unowned policies";

/// The start of the window `t` falls in: windows are `length` long, aligned
/// to the Unix epoch, so every function computes the same one.
pub fn window_start(t: DateTime<Utc>, length: Duration) -> DateTime<Utc> {
    let secs = length.num_seconds().max(1);
    let start = t.timestamp().div_euclid(secs) * secs;
    DateTime::from_timestamp(start, 0).unwrap_or(t)
}

/// The window of one owner: `state/notifier/exposure/<start>/<owner hash>.json`.
pub fn window_key(start: DateTime<Utc>, owner: &str) -> String {
    format!(
        "{WINDOW_PREFIX}{}/{}.json",
        start.format("%Y%m%dT%H%M%SZ"),
        crate::lkg::sha256_hex(owner.as_bytes())
    )
}

/// An owner's flips in one window, sent as one digest when the window closes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExposureWindow {
    pub owner: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub changes: Vec<ExposureChanged>,
    /// Its digest is being sent: nothing more is added (a late flip goes to
    /// a later window), so what is sent is what the window holds.
    #[serde(default)]
    pub closed: bool,
    /// The digest went out.
    #[serde(default)]
    pub sent: bool,
}

/// What adding a flip to a window did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// The window now holds it.
    Added(ExposureWindow),
    /// The window already held it (a redelivery): nothing to do.
    AlreadyThere,
    /// The window closed without it: it belongs to a later one.
    Closed,
}

impl ExposureWindow {
    pub fn new(owner: &str, start: DateTime<Utc>, length: Duration) -> Self {
        Self {
            owner: owner.to_owned(),
            start,
            end: start + length,
            changes: Vec::new(),
            closed: false,
            sent: false,
        }
    }

    /// `window` (or a new one) with `change` in it.
    pub fn add(window: Option<&ExposureWindow>, fresh: ExposureWindow, change: &ExposureChanged) -> Added {
        let window = window.cloned().unwrap_or(fresh);
        let id = change.id();
        if window.changes.iter().any(|c| c.id() == id) {
            return Added::AlreadyThere;
        }
        if window.closed {
            return Added::Closed;
        }
        let mut window = window;
        window.changes.push(change.clone());
        Added::Added(window)
    }

    /// Whether the digest is due at `now`.
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        !self.sent && self.end <= now && !self.changes.is_empty()
    }

    /// The latest flip of each image, by service: what the digest tells. An
    /// image that flipped and flipped back within the window is told as it
    /// ends up.
    pub fn latest(&self) -> Vec<&ExposureChanged> {
        let mut latest: BTreeMap<_, &ExposureChanged> = BTreeMap::new();
        for change in &self.changes {
            let slot = latest.entry(change.subject()).or_insert(change);
            if change.seq > slot.seq {
                *slot = change;
            }
        }
        let mut changes: Vec<&ExposureChanged> = latest.into_values().collect();
        // Failing first, then by environment and service.
        changes
            .sort_by_key(|c| (c.status != ExposureStatus::Failing, c.environment.clone(), c.service.clone()));
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Severity;
    use crate::scan::{ExceptedFinding, ExceptionSummary, ScanRule, ScanViolation};

    #[test]
    fn services_are_named_by_cluster_and_name() {
        let arn = "arn:aws:ecs:us-west-2:123456789012:service/my-cluster/my-service";
        assert_eq!(service_of_arn(arn).as_deref(), Some("my-cluster/my-service"));
        assert_eq!(service_of_arn("arn:aws:ecs:us-west-2:123456789012:service/my-service"), None);
        assert_eq!(service_of_arn("arn:aws:ecs:us-west-2:123456789012:task/c/t"), None);
        // Each part present, and no more parts than two.
        assert_eq!(service_of_arn("arn:aws:ecs:us-west-2:123456789012:service//my-service"), None);
        assert_eq!(service_of_arn("arn:aws:ecs:us-west-2:123456789012:service/my-cluster/"), None);
        assert_eq!(service_of_arn("arn:aws:ecs:us-west-2:123456789012:service/c/s/extra"), None);
    }

    #[test]
    fn keys_say_where_each_record_lives() {
        assert_eq!(running_key(Some("prod"), "c/s"), "running/prod/c/s.json");
        assert_eq!(running_key(None, "c/s"), "running/_base/c/s.json");
        let digest = ImageDigest::parse(A).unwrap();
        assert_eq!(digest_index_key(&digest), format!("running-by-digest/{A}.json"));
        let start = at("2026-11-28T10:15:00Z");
        let key = window_key(start, "team-payments");
        assert_eq!(
            key,
            format!(
                "state/notifier/exposure/20261128T101500Z/{}.json",
                crate::lkg::sha256_hex(b"team-payments")
            )
        );
        assert_ne!(key, window_key(start, "team-ledger"), "one window per owner");
        assert_eq!(
            (ExposureStatus::Passing.as_str(), ExposureStatus::Failing.as_str()),
            ("passing", "failing")
        );
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn fail(messages: &[&str]) -> ScanVerdict {
        ScanVerdict {
            violations: messages
                .iter()
                .map(|m| ScanViolation { rule: ScanRule::Threshold, severity: None, message: (*m).into() })
                .collect(),
            ..ScanVerdict::empty(Verdict::Fail, "COMPLETE")
        }
    }

    fn pass_by(exceptions: &[(&str, &str)]) -> ScanVerdict {
        ScanVerdict {
            excepted: exceptions
                .iter()
                .map(|(id, until)| ExceptedFinding {
                    id: (*id).into(),
                    package: None,
                    severity: Severity::Critical,
                    exception: std::sync::Arc::new(ExceptionSummary {
                        id: (*id).into(),
                        package: None,
                        expires: until.parse().unwrap(),
                        reason: "vendor fix due".into(),
                        ticket: None,
                    }),
                })
                .collect(),
            ..ScanVerdict::empty(Verdict::Pass, "COMPLETE")
        }
    }

    fn judged(verdict: &ScanVerdict) -> Judged<'_> {
        Judged { verdict, owner: Some("team-payments"), policy_key: Some("policies/payments/appsec.yaml") }
    }

    #[test]
    fn a_failing_judgement_of_a_deployed_image_is_a_flip_to_announce() {
        let now = at("2026-11-28T10:00:00Z");
        let verdict = fail(&["1 CRITICAL finding(s) exceed the limit of 0: CVE-2026-4040"]);
        let e = rejudge(&Exposure::default(), &judged(&verdict), now).unwrap();
        assert_eq!((e.status, e.seq, e.since, e.announced), (ExposureStatus::Failing, 1, Some(now), false));
        assert_eq!(e.owner.as_deref(), Some("team-payments"));
        // Judged again the same: nothing to write, nothing to tell.
        let again = Exposure { announced: true, ..e.clone() };
        assert_eq!(rejudge(&again, &judged(&verdict), now + Duration::hours(1)), None);
        // Another finding while failing, judged later: recorded, not a flip.
        let later = now + Duration::hours(2);
        let more = fail(&["2 CRITICAL finding(s) exceed the limit of 0: CVE-2026-4040, CVE-2026-4041"]);
        let updated = rejudge(&again, &judged(&more), later).unwrap();
        assert_eq!((updated.seq, updated.announced, updated.since), (1, true, Some(now)));
        assert_eq!(updated.judged_at, Some(later));
        assert_eq!(
            updated.blocking,
            ["2 CRITICAL finding(s) exceed the limit of 0: CVE-2026-4040, CVE-2026-4041"]
        );
        // The policy changed hands: recorded too, with the new owner and key.
        let moved = Judged {
            verdict: &more,
            owner: Some("team-ledger"),
            policy_key: Some("policies/default/appsec.lkg.json"),
        };
        let updated = rejudge(&updated, &moved, later).unwrap();
        assert_eq!(updated.owner.as_deref(), Some("team-ledger"));
        assert_eq!(updated.policy_key.as_deref(), Some("policies/default/appsec.lkg.json"));
        assert_eq!(updated.seq, 1);
    }

    #[test]
    fn passing_by_an_exception_flips_back_saying_until_when() {
        let now = at("2026-11-28T10:00:00Z");
        let failing = Exposure {
            status: ExposureStatus::Failing,
            seq: 1,
            announced: true,
            blocking: vec!["x".into()],
            ..Exposure::default()
        };
        let verdict = pass_by(&[("CVE-2026-4040", "2026-12-31"), ("CVE-2026-4040", "2026-12-31")]);
        let e = rejudge(&failing, &judged(&verdict), now).unwrap();
        assert_eq!((e.status, e.seq, e.announced), (ExposureStatus::Passing, 2, false));
        assert_eq!(
            e.accepted,
            vec![Accepted {
                id: "CVE-2026-4040".into(),
                package: None,
                expires: "2026-12-31".parse().unwrap()
            }]
        );
        assert!(e.blocking.is_empty());
        // Renewed to a later date while passing: recorded, not a flip.
        let announced = Exposure { announced: true, ..e.clone() };
        let renewed = pass_by(&[("CVE-2026-4040", "2027-03-31")]);
        let r = rejudge(&announced, &judged(&renewed), now).unwrap();
        assert_eq!((r.seq, r.announced), (2, true));
        assert_eq!(r.accepted[0].expires.to_string(), "2027-03-31");
    }

    #[test]
    fn only_an_unannounced_flip_is_announced() {
        let flipped = Exposure {
            status: ExposureStatus::Failing,
            seq: 1,
            announced: false,
            since: Some(at("2026-11-28T10:00:00Z")),
            owner: Some("team-payments".into()),
            ..Exposure::default()
        };
        let record = service(vec![image(A, flipped.clone())]);
        let change = ExposureChanged::of(&record, &record.images[0]).expect("an unannounced flip");
        assert_eq!(change.id(), format!("prod/prod-cluster/payments-api/app/{A}/1"));
        assert_eq!(
            (change.status, change.since, change.owner()),
            (ExposureStatus::Failing, at("2026-11-28T10:00:00Z"), "team-payments")
        );
        let told = Exposure { announced: true, ..flipped.clone() };
        assert_eq!(ExposureChanged::of(&record, &image(A, told)), None);
        // No flip yet (seq 0) is nothing to announce, whatever the flag says.
        let never = Exposure { seq: 0, announced: false, ..flipped.clone() };
        assert_eq!(ExposureChanged::of(&record, &image(A, never)), None);
        let unowned = ExposureChanged { owner: None, ..change };
        assert_eq!(unowned.owner(), UNOWNED);
        assert_eq!(record.digests().into_iter().map(ImageDigest::as_str).collect::<Vec<_>>(), [A]);
    }

    #[test]
    fn a_judgement_older_than_the_recorded_one_changes_nothing() {
        // The daily run started at 10:00; a finding's own re-judge at 10:05
        // recorded a FAIL before the daily run's PASS arrived.
        let failing =
            rejudge(&Exposure::default(), &judged(&fail(&["CVE-2026-1"])), at("2026-11-28T10:05:00Z"))
                .unwrap();
        let pass = ScanVerdict::empty(Verdict::Pass, "COMPLETE");
        assert_eq!(rejudge(&failing, &judged(&pass), at("2026-11-28T10:00:00Z")), None);
        let same_time = rejudge(&failing, &judged(&pass), at("2026-11-28T10:05:00Z")).unwrap();
        assert_eq!(
            same_time.status,
            ExposureStatus::Passing,
            "a judgement as new as the recorded one counts"
        );
        let later = rejudge(&failing, &judged(&pass), at("2026-11-28T10:06:00Z")).unwrap();
        assert_eq!((later.status, later.seq), (ExposureStatus::Passing, 2));
    }

    #[test]
    fn a_scan_still_running_changes_nothing_and_a_deployed_pass_is_not_news() {
        let now = at("2026-11-28T10:00:00Z");
        let pending = ScanVerdict::empty(Verdict::Pending, "IN_PROGRESS");
        assert_eq!(rejudge(&Exposure::default(), &judged(&pending), now), None);
        let clean = ScanVerdict::empty(Verdict::Pass, "COMPLETE");
        let e = rejudge(&Exposure::default(), &judged(&clean), now).unwrap();
        assert_eq!((e.status, e.seq, e.announced), (ExposureStatus::Passing, 0, true));
        assert_eq!(ExposureChanged::of(&service(vec![]), &image(A, e)), None);
    }

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

    fn image(digest: &str, exposure: Exposure) -> RunningImage {
        RunningImage {
            container: "app".into(),
            image: format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/payments@{digest}"),
            repository: "payments".into(),
            digest: ImageDigest::parse(digest).unwrap(),
            exposure,
        }
    }

    fn service(images: Vec<RunningImage>) -> RunningService {
        RunningService {
            environment: Some("prod".into()),
            service: "prod-cluster/payments-api".into(),
            deployment: "d-1".into(),
            deployed_at: at("2026-11-27T09:00:00Z"),
            images,
        }
    }

    #[test]
    fn a_later_deployment_replaces_and_keeps_what_it_knew_of_the_same_digest() {
        let failing = Exposure { status: ExposureStatus::Failing, seq: 1, ..Exposure::default() };
        let stored = service(vec![image(A, failing.clone()), image(B, failing.clone())]);
        let next = RunningService {
            deployment: "d-2".into(),
            deployed_at: at("2026-11-28T09:00:00Z"),
            images: vec![image(A, Exposure::default()), image(C, Exposure::default())],
            ..stored.clone()
        };
        assert!(next.replaces(&stored));
        assert!(!stored.replaces(&next), "an older deployment never replaces a newer");
        assert!(!stored.replaces(&stored), "the same deployment recorded again changes nothing");
        let merged = next.carrying_over(Some(&stored));
        assert_eq!(merged.images[0].exposure, failing);
        assert_eq!(merged.images[1].exposure, Exposure::default());
        assert_eq!(merged.key(), "running/prod/prod-cluster/payments-api.json");
    }

    fn change(service: &str, seq: u32, status: ExposureStatus) -> ExposureChanged {
        ExposureChanged {
            environment: Some("prod".into()),
            service: service.into(),
            container: "app".into(),
            image: format!("payments@{A}"),
            repository: "payments".into(),
            digest: ImageDigest::parse(A).unwrap(),
            status,
            seq,
            since: at("2026-11-28T10:03:00Z"),
            blocking: vec![],
            accepted: vec![],
            owner: Some("team-payments".into()),
            policy_key: None,
        }
    }

    #[test]
    fn windows_align_and_hold_each_flip_once() {
        let length = Duration::minutes(15);
        let start = window_start(at("2026-11-28T10:14:59Z"), length);
        assert_eq!(start, at("2026-11-28T10:00:00Z"));
        assert_eq!(window_start(at("2026-11-28T10:15:00Z"), length), at("2026-11-28T10:15:00Z"));
        let fresh = ExposureWindow::new("team-payments", start, length);
        let one = change("c/a", 1, ExposureStatus::Failing);
        let Added::Added(w) = ExposureWindow::add(None, fresh.clone(), &one) else { panic!() };
        assert_eq!(ExposureWindow::add(Some(&w), fresh.clone(), &one), Added::AlreadyThere);
        let closed = ExposureWindow { closed: true, ..w.clone() };
        assert_eq!(ExposureWindow::add(Some(&closed), fresh.clone(), &one), Added::AlreadyThere);
        assert_eq!(
            ExposureWindow::add(Some(&closed), fresh, &change("c/b", 1, ExposureStatus::Failing)),
            Added::Closed
        );
        assert!(!w.is_due(at("2026-11-28T10:14:59Z")));
        assert!(w.is_due(at("2026-11-28T10:15:00Z")));
        assert!(closed.is_due(at("2026-11-28T11:00:00Z")), "closed but not sent: send it");
        let sent = ExposureWindow { sent: true, ..closed };
        assert!(!sent.is_due(at("2026-11-28T11:00:00Z")));
    }

    #[test]
    fn a_window_tells_each_image_as_it_ends_up_failing_first() {
        let start = at("2026-11-28T10:00:00Z");
        let mut w = ExposureWindow::new("team-payments", start, Duration::minutes(15));
        w.changes = vec![
            change("c/b", 2, ExposureStatus::Passing),
            change("c/a", 1, ExposureStatus::Failing),
            change("c/b", 1, ExposureStatus::Failing),
            change("c/c", 1, ExposureStatus::Failing),
            change("c/c", 2, ExposureStatus::Passing),
        ];
        let latest: Vec<_> = w.latest().iter().map(|c| (c.service.as_str(), c.seq)).collect();
        assert_eq!(latest, vec![("c/a", 1), ("c/b", 2), ("c/c", 2)]);
    }
}
