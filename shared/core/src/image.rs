//! Image references: how Docker reads `[registry/]repository[:tag][@digest]`,
//! and the parts of an ECR image (a pinned digest is a [`crate::digest::Digest`]). Every rule,
//! gate and hook that looks at an image reads it here.

/// An image reference split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef<'a> {
    /// The registry host, with its port if any; Docker Hub is `docker.io`.
    pub registry: &'a str,
    pub repository: &'a str,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

/// `image` as it runs once pinned to `digest`: `[registry/]repository@digest`
/// (a tag or an earlier digest dropped).
pub fn pin(image: &str, digest: &crate::digest::Digest) -> String {
    let name = image.split_once('@').map_or(image, |(name, _)| name);
    let name = match parse_image(name).tag {
        Some(tag) => name.strip_suffix(tag).and_then(|n| n.strip_suffix(':')).unwrap_or(name),
        None => name,
    };
    format!("{name}@{digest}")
}

/// Parses `[registry/]repository[:tag][@digest]` as Docker does: the first
/// path component is a registry when it has a `.` or a `:`, or is `localhost`.
pub fn parse_image(image: &str) -> ImageRef<'_> {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let (registry, rest) = match name.split_once('/') {
        Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            (first, rest)
        }
        _ => ("docker.io", name),
    };
    let (repository, tag) = match rest.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, Some(t)),
        _ => (rest, None),
    };
    ImageRef { registry, repository, tag, digest }
}

/// An ECR image: `<account>.dkr.ecr.<region>.amazonaws.com/<repository>[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrImage {
    pub registry_id: String,
    pub region: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl EcrImage {
    /// The ECR parts of an image reference, or `None` for another registry.
    pub fn parse(image: &str) -> Option<Self> {
        let r = parse_image(image);
        let mut host = r.registry.split('.');
        let (account, dkr, ecr, region) = (host.next()?, host.next()?, host.next()?, host.next()?);
        let rest: Vec<&str> = host.collect();
        let aws_domain = matches!(rest.as_slice(), ["amazonaws", "com"] | ["amazonaws", "com", "cn"]);
        if dkr != "dkr"
            || ecr != "ecr"
            || !aws_domain
            || account.len() != 12
            || !account.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        Some(Self {
            registry_id: account.to_owned(),
            region: region.to_owned(),
            repository: r.repository.to_owned(),
            tag: r.tag.map(str::to_owned),
            digest: r.digest.map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinning_drops_the_tag_and_any_earlier_digest() {
        let d = crate::digest::Digest::parse(&format!("sha256:{}", "ab".repeat(32))).unwrap();
        for (image, pinned) in [
            (
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1.4",
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/web",
            ),
            ("localhost:5000/web", "localhost:5000/web"),
            ("localhost:5000/web:v1@sha256:00", "localhost:5000/web"),
            ("nginx", "nginx"),
        ] {
            assert_eq!(pin(image, &d), format!("{pinned}@{d}"), "{image}");
        }
    }

    #[test]
    fn image_references_parse_like_docker() {
        let r = parse_image("nginx@sha256:abc");
        assert_eq!((r.registry, r.repository, r.digest), ("docker.io", "nginx", Some("sha256:abc")));
        let r = parse_image("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/web:1.2");
        assert_eq!(
            (r.registry, r.repository, r.tag),
            ("123456789012.dkr.ecr.us-east-1.amazonaws.com", "team/web", Some("1.2"))
        );
        let r = parse_image("localhost:5000/web");
        assert_eq!((r.registry, r.repository, r.tag), ("localhost:5000", "web", None));
        assert_eq!(parse_image("library/redis:7").registry, "docker.io");
    }

    #[test]
    fn ecr_images_are_recognised() {
        let i = EcrImage::parse("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/web@sha256:ab").unwrap();
        assert_eq!(
            (i.registry_id.as_str(), i.region.as_str(), i.repository.as_str()),
            ("123456789012", "us-east-1", "team/web")
        );
        assert_eq!(i.digest.as_deref(), Some("sha256:ab"));
        assert!(EcrImage::parse("nginx@sha256:ab").is_none());
        assert!(EcrImage::parse("public.ecr.aws/nginx/nginx:1").is_none());
    }
}
