//! The fleet's resources as `infra/template.yaml` deploys them, provisioned in
//! the emulator, with one identity per function.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use serde_json::{Value, json};
use sha2::Digest as _;
use shipgate_core::manifest;

use crate::*;

/// What the template's logical ids stand for in the emulator: the values
/// CloudFormation would substitute for `Ref` and `GetAtt` on deploy.
fn template_resources(topic_arn: &str, secret_arn: &str, key_arn: &str) -> Value {
    let arn = |service: &str, resource: &str| format!("arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}");
    let key_id = key_arn.rsplit('/').next().unwrap_or(key_arn);
    let mut resources = json!({
        "ConfigBucket": {"Ref": CONFIG_BUCKET, "Arn": format!("arn:aws:s3:::{CONFIG_BUCKET}")},
        "ShipgateBus": {"Ref": EVENT_BUS, "Name": EVENT_BUS, "Arn": arn("events", &format!("event-bus/{EVENT_BUS}"))},
        "NotificationTopic": {"Ref": topic_arn, "TopicArn": topic_arn, "TopicName": TOPIC},
        "WebhookSecret": {"Ref": secret_arn, "Id": secret_arn},
        "DeadLetterQueue": {
            "Ref": format!("http://127.0.0.1/{ACCOUNT}/{DEAD_LETTER_QUEUE}"),
            "Arn": arn("sqs", DEAD_LETTER_QUEUE),
            "QueueName": DEAD_LETTER_QUEUE,
        },
        "ShipgateKey": {"Ref": key_id, "Arn": key_arn, "KeyId": key_id},
    });
    for function in FUNCTIONS {
        let logical: String =
            function.split('-').map(|w| w[..1].to_uppercase() + &w[1..]).collect::<String>() + "Function";
        resources[logical] = json!({"Ref": function, "Arn": arn("lambda", &format!("function:{function}"))});
    }
    resources
}

/// An image index in ECR and its per-platform images.
#[derive(Debug, Clone)]
pub struct ImageIndex {
    pub digest: String,
    /// (`os/arch`, the image's digest), in the order pushed.
    pub children: Vec<(String, String)>,
}

impl ImageIndex {
    /// The digest of the image for `platform` (`linux/arm64`).
    /// The image for `platform` as the index spells it (`linux/arm64/v9`).
    pub fn child(&self, platform: &str) -> &str {
        self.children.iter().find(|(p, _)| p == platform).map(|(_, d)| d.as_str()).unwrap()
    }
}

/// `os/architecture[/variant]` as an OCI platform object.
fn platform_json(platform: &str) -> Value {
    let parts: Vec<&str> = platform.split('/').collect();
    let mut p = json!({"os": parts[0], "architecture": parts[1]});
    if let Some(variant) = parts.get(2) {
        p["variant"] = (*variant).into();
    }
    p
}

/// The fleet's resources as `infra/template.yaml` deploys them (the
/// versioned config bucket, the Shipgate bus, the notification topic, the
/// webhook secret, the dead-letter queue), a queue that receives every event
/// put on the bus (so tests read back what a function emitted), and one
/// identity per function holding exactly its role's policies from the
/// template. `sdk` is the administrator's; a function runs as
/// [`Fleet::sdk_for`] gives it.
#[derive(Debug)]
pub struct Fleet {
    pub aws: Emulator,
    pub sdk: SdkConfig,
    pub config: shipgate_aws::env::FleetConfig,
    pub topic_arn: String,
    pub webhook_secret_arn: String,
    /// The template's parameters this fleet was deployed with (`sam deploy
    /// --parameter-overrides`; the rest take their defaults).
    pub parameters: BTreeMap<String, String>,
    functions: BTreeMap<String, Deployed>,
    sqs: aws_sdk_sqs::Client,
    events_queue: String,
    /// Per function, the queue its template rules on the Shipgate bus
    /// deliver to.
    routed_queues: BTreeMap<String, String>,
}

/// A function as the template deploys it: an IAM user holding exactly its
/// role's policies, and its configuration (SAM's Globals merged in).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployed {
    #[serde(skip_deserializing, default = "no_credentials")]
    pub credentials: Credentials,
    pub policies: Vec<Value>,
    /// Its environment variables, resolved.
    pub environment: BTreeMap<String, String>,
    pub timeout: Option<u64>,
    pub memory_size: Option<u64>,
    pub reserved_concurrency: Option<u64>,
    /// The EventBridge Scheduler schedules that invoke it, by the name of
    /// its `ScheduleV2` event (`DailyExpiringExceptions`).
    pub schedules: BTreeMap<String, Schedule>,
    /// The EventBridge rules that target it, by the name of its
    /// `EventBridgeRule` event.
    pub rules: BTreeMap<String, Rule>,
}

/// An EventBridge rule as the template deploys it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Rule {
    /// The bus's name (`default` for AWS's own events).
    pub bus: String,
    pub pattern: Value,
}

impl Deployed {
    /// Its schedule `name`.
    ///
    /// # Panics
    /// When the template gives the function no such schedule.
    pub fn schedule(&self, name: &str) -> &Schedule {
        self.schedules.get(name).unwrap_or_else(|| {
            panic!("no schedule {name} in the template (it has {:?})", self.schedules.keys())
        })
    }
}

/// A schedule as the template deploys it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Schedule {
    pub expression: String,
    /// The `Input` it sends, with Scheduler's context attributes unfilled.
    pub input: Option<String>,
}

impl Schedule {
    /// What Scheduler delivers when the schedule fires at `at`: its `Input`
    /// with the context attributes filled
    /// (https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html).
    ///
    /// # Panics
    /// When the schedule has no `Input` (the template's test forbids that)
    /// or it is not JSON.
    pub fn fire(&self, at: chrono::DateTime<chrono::Utc>) -> Value {
        let input = self.input.as_deref().expect("every schedule has an explicit Input");
        let filled = input
            .replace("<aws.scheduler.scheduled-time>", &at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .replace("<aws.scheduler.execution-id>", &format!("local-{}", at.timestamp()))
            .replace(
                "<aws.scheduler.schedule-arn>",
                &format!("arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/local"),
            )
            .replace("<aws.scheduler.attempt-number>", "1");
        serde_json::from_str(&filled).unwrap_or_else(|e| panic!("{e}: {filled}"))
    }
}

fn no_credentials() -> Credentials {
    Credentials::new("", "", None, None, "none")
}

/// The config bucket: named as `events/` names it, so every sample payload
/// meets the emulator's resources.
pub const CONFIG_BUCKET: &str = "shipgate-config-123456789012";
pub const EVENT_BUS: &str = "shipgate";
pub const TOPIC: &str = "shipgate-notifications";
pub const WEBHOOK_SECRET_NAME: &str = "shipgate/github-webhook";
/// The GitHub webhook secret the fleet's secret holds.
pub const WEBHOOK_SECRET: &str = "shipgate-local-webhook-secret";
const DEAD_LETTER_QUEUE: &str = "shipgate-dead-letters";

impl Fleet {
    pub async fn start() -> Self {
        Self::start_with(BTreeMap::new()).await
    }

    /// [`Fleet::start`], deployed with `parameters` as `sam deploy
    /// --parameter-overrides` gives them.
    pub async fn start_with(parameters: BTreeMap<String, String>) -> Self {
        let aws = Emulator::start();
        let sdk = aws.sdk_config().await;
        // The Shipgate key encrypts the bucket, the topic, the secret and the
        // queue, as in the template, so using them needs the key too.
        let key = aws.control("POST", "/_shipgate/kms/keys", Some(&json!({"description": "ShipgateKey"})));
        let key_arn = key["arn"].as_str().unwrap().to_owned();
        let s3 = shipgate_aws::clients::s3(&sdk);
        s3.create_bucket().bucket(CONFIG_BUCKET).send().await.unwrap();
        use aws_sdk_s3::types::{
            ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
            ServerSideEncryptionRule,
        };
        let by_default = ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::AwsKms)
            .kms_master_key_id(&key_arn)
            .build()
            .unwrap();
        let rule =
            ServerSideEncryptionRule::builder().apply_server_side_encryption_by_default(by_default).build();
        s3.put_bucket_encryption()
            .bucket(CONFIG_BUCKET)
            .server_side_encryption_configuration(
                ServerSideEncryptionConfiguration::builder().rules(rule).build().unwrap(),
            )
            .send()
            .await
            .unwrap();
        s3.put_bucket_versioning()
            .bucket(CONFIG_BUCKET)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let eventbridge = aws_sdk_eventbridge::Client::new(&sdk);
        eventbridge.create_event_bus().name(EVENT_BUS).send().await.unwrap();
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let events_queue =
            sqs.create_queue().queue_name("shipgate-events").send().await.unwrap().queue_url.unwrap();
        let queue_arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:shipgate-events");
        eventbridge
            .put_rule()
            .name("everything")
            .event_bus_name(EVENT_BUS)
            .event_pattern(r#"{"source":["shipgate"]}"#)
            .send()
            .await
            .unwrap();
        eventbridge
            .put_targets()
            .rule("everything")
            .event_bus_name(EVENT_BUS)
            .targets(
                aws_sdk_eventbridge::types::Target::builder().id("queue").arn(queue_arn).build().unwrap(),
            )
            .send()
            .await
            .unwrap();
        let config = shipgate_aws::env::FleetConfig {
            config_bucket: CONFIG_BUCKET.to_owned(),
            event_bus: EVENT_BUS.to_owned(),
        };
        let topic_arn = aws_sdk_sns::Client::new(&sdk)
            .create_topic()
            .name(TOPIC)
            .attributes("KmsMasterKeyId", &key_arn)
            .send()
            .await
            .unwrap()
            .topic_arn
            .unwrap();
        let webhook_secret_arn = aws_sdk_secretsmanager::Client::new(&sdk)
            .create_secret()
            .name(WEBHOOK_SECRET_NAME)
            .secret_string(WEBHOOK_SECRET)
            .kms_key_id(&key_arn)
            .send()
            .await
            .unwrap()
            .arn
            .unwrap();
        sqs.create_queue()
            .queue_name(DEAD_LETTER_QUEUE)
            .attributes(aws_sdk_sqs::types::QueueAttributeName::KmsMasterKeyId, &key_arn)
            .send()
            .await
            .unwrap();
        let resources = template_resources(&topic_arn, &webhook_secret_arn, &key_arn);
        let answer = aws.control(
            "POST",
            "/_shipgate/iam/functions",
            Some(&json!({"resources": resources, "region": REGION, "parameters": parameters})),
        );
        let functions = answer["functions"]
            .as_object()
            .unwrap_or_else(|| panic!("the emulator deploys no functions: {answer}"))
            .iter()
            .map(|(name, deployed)| {
                let field = |k: &str| deployed[k].as_str().unwrap().to_owned();
                let mut function: Deployed = serde_json::from_value(deployed.clone()).unwrap();
                function.credentials =
                    Credentials::new(field("accessKeyId"), field("secretAccessKey"), None, None, "role");
                (name.clone(), function)
            })
            .collect();
        let routed_queues = route_shipgate_events(&eventbridge, &sqs, &functions).await;
        Self {
            aws,
            sdk,
            config,
            topic_arn,
            webhook_secret_arn,
            parameters,
            functions,
            sqs,
            events_queue,
            routed_queues,
        }
    }

    /// The SDK configuration `function` runs with: an identity holding
    /// exactly its role's policies from `infra/template.yaml`, so a call the
    /// template does not allow fails here as it would on AWS.
    ///
    /// # Panics
    /// When the template has no function of that name.
    pub async fn sdk_for(&self, function: &str) -> SdkConfig {
        self.aws.sdk_config_as(self.deployed(function).credentials.clone()).await
    }

    /// The policies `function`'s role holds, resolved as deployed.
    pub fn policies_of(&self, function: &str) -> Vec<Value> {
        self.deployed(function).policies.clone()
    }

    /// `function` as the template deploys it.
    ///
    /// # Panics
    /// When the template has no function of that name.
    pub fn deployed(&self, function: &str) -> &Deployed {
        self.functions.get(function).unwrap_or_else(|| {
            panic!("infra/template.yaml has no function {function} (it has {:?})", self.functions.keys())
        })
    }

    /// A CodePipeline job's `artifactCredentials`: a session of a role that
    /// may read `bucket`'s objects and nothing else, as CodePipeline hands one
    /// to an action.
    pub fn artifact_credentials(&self, bucket: &str) -> Credentials {
        let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{bucket}/*")}]});
        self.aws.session("codepipeline-artifacts", &[policy])
    }

    /// A queue subscribed to the notification topic, with an optional SNS
    /// filter policy.
    pub async fn inbox(&self, name: &str, filter: Option<&str>) -> Inbox {
        let (url, arn) = create_queue(&self.sqs, name).await;
        let sns = aws_sdk_sns::Client::new(&self.sdk);
        let mut subscribe = sns.subscribe().topic_arn(&self.topic_arn).protocol("sqs").endpoint(arn);
        if let Some(filter) = filter {
            subscribe = subscribe.attributes("FilterPolicy", filter);
        }
        subscribe.send().await.unwrap();
        Inbox { sqs: self.sqs.clone(), url }
    }

    /// The notifier's configuration as the template sets it (default
    /// categories, email, 15-minute exposure windows), for this fleet.
    pub fn notifier_config(&self) -> notifier::Config {
        notifier::Config {
            config_bucket: self.config.config_bucket.clone(),
            topic_arn: self.topic_arn.clone(),
            categories: shipgate_core::notify::Category::DEFAULTS.into_iter().collect(),
            format: notifier::Format::Email,
            exposure_window: chrono::Duration::minutes(15),
        }
    }

    /// The access key `function` signs with, for the runtime emulator.
    pub fn credentials_of(&self, function: &str) -> &Credentials {
        &self.deployed(function).credentials
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        shipgate_aws::clients::s3(&self.sdk)
    }

    /// Every event the bus delivered since the last call, in order.
    pub async fn events(&self) -> Vec<Value> {
        drain_queue(&self.sqs, &self.events_queue).await
    }

    /// The Shipgate events the template's own rules delivered to `function`
    /// since the last call (the emulator's EventBridge matched their
    /// patterns): what AWS would invoke it with.
    ///
    /// # Panics
    /// When no rule of the template routes the Shipgate bus to `function`.
    pub async fn routed(&self, function: &str) -> Vec<Value> {
        let queue = self.routed_queues.get(function).unwrap_or_else(|| {
            panic!("no rule of infra/template.yaml routes the Shipgate bus to {function}")
        });
        drain_queue(&self.sqs, queue).await
    }

    /// Drops the events the bus delivered so far, unread: for a long run
    /// that never reads them, since moto counts a queue's messages on every
    /// delivery to it, so an undrained queue makes every event slower.
    pub async fn forget_events(&self) {
        for queue in std::iter::once(&self.events_queue).chain(self.routed_queues.values()) {
            self.sqs.purge_queue().queue_url(queue).send().await.unwrap();
        }
    }

    /// Puts an object in the config bucket; returns its version id.
    pub async fn put_config(&self, key: &str, body: &str) -> String {
        let out = self
            .s3()
            .put_object()
            .bucket(CONFIG_BUCKET)
            .key(key)
            .body(body.as_bytes().to_vec().into())
            .send()
            .await
            .unwrap();
        out.version_id.unwrap()
    }

    /// Reads an object from the config bucket as JSON, if it exists.
    pub async fn get_json(&self, key: &str) -> Option<Value> {
        let out = self.s3().get_object().bucket(CONFIG_BUCKET).key(key).send().await.ok()?;
        let bytes = out.body.collect().await.unwrap().to_vec();
        Some(serde_json::from_slice(&bytes).unwrap())
    }

    /// Installs a last-known-good policy for `scope` (a repository name, or
    /// `default`) as policy-validator would have written it.
    pub async fn install_policy(&self, scope: &str, yaml: &str) {
        let key = format!("policies/{scope}/appsec.yaml");
        let source = shipgate_core::lkg::PolicySource {
            bucket: CONFIG_BUCKET.to_owned(),
            key: key.clone(),
            version_id: None,
            sequencer: None,
            uploaded_at: chrono::Utc::now(),
        };
        let shipgate_core::lkg::Judged::Valid(lkg) =
            shipgate_core::lkg::judge_upload(yaml.as_bytes(), source, chrono::Utc::now())
        else {
            panic!("test policy for {scope} is invalid")
        };
        let body = serde_json::to_string(&lkg).unwrap();
        self.put_config(&format!("policies/{scope}/appsec.lkg.json"), &body).await;
    }

    /// Creates a pipeline (see [`Emulator::create_pipeline`]).
    pub async fn create_pipeline(&self, name: &str) {
        self.aws.create_pipeline(name).await;
    }

    /// Creates an ECR repository.
    pub async fn create_repository(&self, name: &str) {
        aws_sdk_ecr::Client::new(&self.sdk).create_repository().repository_name(name).send().await.unwrap();
    }

    /// Pushes a blob with ECR's layer-upload APIs, as `docker push` does,
    /// and returns its digest.
    pub async fn push_blob(&self, repository: &str, blob: &[u8]) -> String {
        let ecr = aws_sdk_ecr::Client::new(&self.sdk);
        let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(blob)));
        let upload = ecr.initiate_layer_upload().repository_name(repository).send().await.unwrap();
        let id = upload.upload_id().unwrap().to_owned();
        ecr.upload_layer_part()
            .repository_name(repository)
            .upload_id(&id)
            .part_first_byte(0)
            .part_last_byte(blob.len() as i64 - 1)
            .layer_part_blob(aws_smithy_types::Blob::new(blob))
            .send()
            .await
            .unwrap();
        ecr.complete_layer_upload()
            .repository_name(repository)
            .upload_id(&id)
            .layer_digests(&digest)
            .send()
            .await
            .unwrap();
        digest
    }

    /// Pushes one image built for `platform` (`os/arch`): its config blob,
    /// then its OCI manifest (tagged `tag` if given). Returns ECR's digest.
    pub async fn push_image(&self, repository: &str, tag: Option<&str>, platform: &str) -> String {
        let mut config = json!({"created": "2026-11-28T12:00:00Z",
            "config": {"User": "10001"}, "rootfs": {"type": "layers", "diff_ids": []},
            "history": [{"created_by": format!("{repository} {tag:?} {platform}")}]});
        config.as_object_mut().unwrap().extend(platform_json(platform).as_object().unwrap().clone());
        let config = config.to_string();
        let config_digest = self.push_blob(repository, config.as_bytes()).await;
        let manifest = json!({"schemaVersion": 2, "mediaType": manifest::OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": []});
        self.put_image(repository, &manifest, manifest::OCI_MANIFEST, tag).await
    }

    async fn put_image(
        &self,
        repository: &str,
        manifest: &Value,
        media_type: &str,
        tag: Option<&str>,
    ) -> String {
        let out = aws_sdk_ecr::Client::new(&self.sdk)
            .put_image()
            .repository_name(repository)
            .image_manifest(manifest.to_string())
            .image_manifest_media_type(media_type)
            .set_image_tag(tag.map(str::to_owned))
            .send()
            .await
            .unwrap();
        out.image().and_then(|i| i.image_id()).and_then(|id| id.image_digest()).unwrap().to_owned()
    }

    /// Pushes what `docker buildx build --platform ... --push` pushes: one
    /// image per platform (`os/arch`, e.g. `linux/arm64`), then the OCI image
    /// index naming them, plus a provenance attestation as buildx adds.
    /// Digests are ECR's, from `PutImage`.
    pub async fn push_image_index(&self, repository: &str, tag: &str, platforms: &[&str]) -> ImageIndex {
        let mut children = Vec::new();
        let mut entries = Vec::new();
        for platform in platforms {
            let digest = self.push_image(repository, None, platform).await;
            entries.push(json!({"mediaType": manifest::OCI_MANIFEST, "digest": digest, "size": 512,
                "platform": platform_json(platform)}));
            children.push(((*platform).to_owned(), digest));
        }
        entries.push(
            json!({"mediaType": manifest::OCI_MANIFEST, "digest": format!("sha256:{}", "a".repeat(64)),
            "size": 566, "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
            "platform": {"architecture": "unknown", "os": "unknown"}}),
        );
        let index = json!({"schemaVersion": 2, "mediaType": manifest::OCI_INDEX, "manifests": entries});
        let digest = self.put_image(repository, &index, manifest::OCI_INDEX, Some(tag)).await;
        ImageIndex { digest, children }
    }

    /// The EventBridge `Object Created` event S3 sends for an upload.
    pub fn object_created(&self, key: &str, version_id: &str, sequencer: &str) -> Value {
        json!({
            "version": "0", "id": format!("evt-{sequencer}"), "detail-type": "Object Created", "source": "aws.s3",
            "account": ACCOUNT, "time": "2026-11-28T09:30:00Z", "region": REGION,
            "resources": [format!("arn:aws:s3:::{CONFIG_BUCKET}")],
            "detail": {"version": "0", "bucket": {"name": CONFIG_BUCKET},
                "object": {"key": key, "size": 100, "etag": "e", "version-id": version_id, "sequencer": sequencer},
                "request-id": "r", "requester": ACCOUNT, "reason": "PutObject"}
        })
    }
}

/// Puts each function's template rules for the Shipgate bus on the
/// emulator's bus, each delivering to a queue of that function's: the events
/// Shipgate emits reach a function by the template's patterns, not by a list
/// in a test. (Rules on the default bus match AWS's own events, which the
/// emulator does not emit; tests hand those to the function.)
async fn route_shipgate_events(
    eventbridge: &aws_sdk_eventbridge::Client,
    sqs: &aws_sdk_sqs::Client,
    functions: &BTreeMap<String, Deployed>,
) -> BTreeMap<String, String> {
    let mut queues = BTreeMap::new();
    for (function, deployed) in functions {
        for (name, rule) in deployed.rules.iter().filter(|(_, r)| r.bus == EVENT_BUS) {
            if !queues.contains_key(function) {
                queues.insert(function.clone(), create_queue(sqs, &format!("routed-{function}")).await);
            }
            let rule_name = format!("{function}-{name}");
            eventbridge
                .put_rule()
                .name(&rule_name)
                .event_bus_name(EVENT_BUS)
                .event_pattern(rule.pattern.to_string())
                .send()
                .await
                .unwrap();
            let target = aws_sdk_eventbridge::types::Target::builder()
                .id("function")
                .arn(&queues[function].1)
                .build()
                .unwrap();
            eventbridge
                .put_targets()
                .rule(&rule_name)
                .event_bus_name(EVENT_BUS)
                .targets(target)
                .send()
                .await
                .unwrap();
        }
    }
    queues.into_iter().map(|(function, (url, _))| (function, url)).collect()
}
