//! Reading a CodePipeline input artifact (a zip in S3) with the job's own
//! temporary `artifactCredentials`, never the function's role.
//!
//! The credentials are held in a type whose `Debug` shows nothing secret, and
//! are used only to build a one-off S3 client.

use std::io::Read;

use aws_credential_types::Credentials;

use shipgate_core::limits::{ARTIFACT_BYTES, ARTIFACT_FILE_BYTES, too_large};

use crate::error::{AwsError, aws_err};

/// Temporary credentials CodePipeline hands the job for its artifacts.
#[derive(Clone)]
pub struct ArtifactCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for ArtifactCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArtifactCredentials(<redacted>)")
    }
}

/// Where an input artifact is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactLocation {
    pub name: String,
    pub bucket: String,
    pub key: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("input artifact {name} does not exist at s3://{bucket}/{key}")]
    Missing { name: String, bucket: String, key: String },
    /// `detail` names the object and says its size and the limit.
    #[error("input artifact {name} refused: {detail}")]
    TooLarge { name: String, detail: String },
    #[error("input artifact {name} is not a readable zip: {reason}")]
    NotZip { name: String, reason: String },
}

/// Which files of an artifact to read: any whose file name is one of
/// `names` (at any depth), and any whose path is one of `paths`.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    pub names: &'a [&'a str],
    pub paths: &'a [&'a str],
}

impl Wanted<'_> {
    fn wants(&self, path: &str) -> bool {
        let file_name = path.rsplit('/').next().unwrap_or(path);
        self.names.contains(&file_name) || self.paths.contains(&path)
    }
}

/// The files of an artifact read, each `(path, text)`, shallowest first
/// (then by path).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArtifactFiles(pub Vec<(String, String)>);

impl ArtifactFiles {
    /// The files named `name`, at any depth, shallowest first.
    pub fn named<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a (String, String)> + 'a {
        let name = name.to_owned();
        self.0.iter().filter(move |(path, _)| path.rsplit('/').next() == Some(name.as_str()))
    }

    /// The shallowest file named `name`.
    pub fn shallowest(&self, name: &str) -> Option<&str> {
        self.named(name).next().map(|(_, text)| text.as_str())
    }

    /// The file at `path`.
    pub fn at(&self, path: &str) -> Option<&str> {
        self.0.iter().find(|(p, _)| p == path).map(|(_, text)| text.as_str())
    }
}

/// Reads the artifact and returns the files it holds that are `wanted`.
pub async fn read_files(
    sdk: &aws_config::SdkConfig,
    credentials: &ArtifactCredentials,
    location: &ArtifactLocation,
    wanted: Wanted<'_>,
) -> Result<ArtifactFiles, ArtifactError> {
    let provider = Credentials::new(
        &credentials.access_key_id,
        &credentials.secret_access_key,
        credentials.session_token.clone(),
        None,
        "codepipeline-artifact-credentials",
    );
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .credentials_provider(provider)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(config);
    let result = s3.get_object().bucket(&location.bucket).key(&location.key).send().await;
    let output = match result {
        Ok(o) => o,
        Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
            return Err(ArtifactError::Missing {
                name: location.name.clone(),
                bucket: location.bucket.clone(),
                key: location.key.clone(),
            });
        }
        Err(e) => return Err(aws_err("S3", "GetObject")(e).into()),
    };
    let bytes = match crate::s3::bounded_body(&location.key, output, ARTIFACT_BYTES).await {
        Err(e) if e.is(crate::s3::TOO_LARGE) => {
            return Err(ArtifactError::TooLarge { name: location.name.clone(), detail: e.message });
        }
        read => read?,
    };
    unzip_files(&location.name, &bytes, wanted)
}

/// The `wanted` files of a zip, shallowest first.
pub fn unzip_files(name: &str, bytes: &[u8], wanted: Wanted<'_>) -> Result<ArtifactFiles, ArtifactError> {
    let not_zip = |reason: String| ArtifactError::NotZip { name: name.to_owned(), reason };
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| not_zip(e.to_string()))?;
    let mut found: Vec<(String, String)> = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| not_zip(e.to_string()))?;
        if !entry.is_file() {
            continue;
        }
        let path = entry.name().map_err(|e| not_zip(e.to_string()))?.to_string();
        if !wanted.wants(&path) {
            continue;
        }
        let mut text = String::new();
        let read = entry.by_ref().take(ARTIFACT_FILE_BYTES + 1).read_to_string(&mut text);
        match read {
            Ok(n) if n as u64 > ARTIFACT_FILE_BYTES => {
                return Err(not_zip(format!("{path}: {}", too_large(entry.size(), ARTIFACT_FILE_BYTES))));
            }
            Ok(_) => found.push((path, text)),
            Err(e) => return Err(not_zip(format!("{path}: {e}"))),
        }
    }
    found
        .sort_by(|(a, _), (b, _)| a.matches('/').count().cmp(&b.matches('/').count()).then_with(|| a.cmp(b)));
    Ok(ArtifactFiles(found))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip(files: &[(&str, &str)]) -> Vec<u8> {
        let mut buffer = std::io::Cursor::new(Vec::new());
        let mut w = zip::ZipWriter::new(&mut buffer);
        for (name, body) in files {
            w.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            w.write_all(body.as_bytes()).unwrap();
        }
        w.finish().unwrap();
        buffer.into_inner()
    }

    #[test]
    fn wanted_files_are_found_at_any_depth_shallowest_first() {
        let bytes = zip(&[
            ("deep/dir/taskdef.json", "deep"),
            ("taskdef.json", "top"),
            ("imageDetail.json", "{}"),
            ("other", "x"),
        ]);
        let names = ["taskdef.json", "imageDetail.json", "appsec.yaml"];
        let files = unzip_files("BuildOutput", &bytes, Wanted { names: &names, paths: &[] }).unwrap();
        assert_eq!(files.0.len(), 3);
        assert_eq!(files.shallowest("taskdef.json"), Some("top"));
        let paths: Vec<&str> = files.named("taskdef.json").map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["taskdef.json", "deep/dir/taskdef.json"]);
        assert_eq!(files.shallowest("appsec.yaml"), None);
        let by_path = unzip_files("BuildOutput", &bytes, Wanted { names: &[], paths: &["other"] }).unwrap();
        assert_eq!(by_path.at("other"), Some("x"));
        assert_eq!(by_path.0.len(), 1);
    }

    #[test]
    fn not_a_zip_is_named() {
        let wanted = Wanted { names: &["taskdef.json"], paths: &[] };
        let err = unzip_files("BuildOutput", b"plain text", wanted).unwrap_err();
        assert!(err.to_string().starts_with("input artifact BuildOutput is not a readable zip"), "{err}");
    }

    #[test]
    fn credentials_never_print() {
        let c = ArtifactCredentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "secret".into(),
            session_token: Some("token".into()),
        };
        assert_eq!(format!("{c:?}"), "ArtifactCredentials(<redacted>)");
    }
}
