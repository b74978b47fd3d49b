//! Content digests, checked once when read.
//!
//! Two types, because two digests of one image say different things: a
//! [`Digest`] is whatever a reference names (a tag resolves to one; it may be
//! an image index), and an [`ImageDigest`] is the platform image a task runs
//! and ECR scans, never an index. The only way from the first to the second
//! is to read the manifest ([`crate::manifest::Manifest::resolve`]) or to be
//! told by AWS that the digest is of a platform image (a scan event, a
//! service revision): so the compiler sees a gate that would judge an index
//! in place of the image that runs.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `sha256:` and 64 lower-case hex digits: the digest of a manifest or blob.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(Box<str>);

/// Why a text is not a [`Digest`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a sha256 digest")]
pub struct NotADigest(pub String);

impl Digest {
    /// Parses `sha256:` followed by 64 lower-case hex digits, nothing else.
    pub fn parse(text: &str) -> Result<Digest, NotADigest> {
        let valid = text.strip_prefix("sha256:").is_some_and(|hex| {
            hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if valid { Ok(Digest(text.into())) } else { Err(NotADigest(text.to_owned())) }
    }

    /// The digest of `bytes` as content-addressed stores compute it.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(format!("sha256:{}", crate::lkg::sha256_hex(bytes)).into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `sha256:4f4f4f4f4f4f` (the first 12 hex digits), for messages.
    pub fn short(&self) -> &str {
        &self.0[..19]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Digest {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Digest {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The digest of a platform image: what a task runs and ECR scans.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ImageDigest(Digest);

impl ImageDigest {
    /// A digest AWS says is of a platform image: ECR's and Inspector's scan
    /// events and findings (ECR scans images, never an index). Anywhere else
    /// (ECS's resolved digests included, which may name an index), read the
    /// manifest.
    pub fn scanned(digest: Digest) -> ImageDigest {
        ImageDigest(digest)
    }

    /// What a manifest read says runs: an index's image for a platform, or
    /// the digest a single image's manifest was read by.
    pub(crate) fn from_manifest(digest: Digest) -> ImageDigest {
        ImageDigest(digest)
    }

    /// An image whose manifest Shipgate cannot read (outside ECR), taken to
    /// be what it is named by.
    pub fn assumed(digest: Digest) -> ImageDigest {
        ImageDigest(digest)
    }

    /// [`Digest::parse`] of a digest AWS says is of a platform image.
    pub fn parse(text: &str) -> Result<ImageDigest, NotADigest> {
        Digest::parse(text).map(ImageDigest)
    }

    pub fn digest(&self) -> &Digest {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn short(&self) -> &str {
        self.0.short()
    }
}

impl fmt::Display for ImageDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for ImageDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl AsRef<str> for ImageDigest {
    fn as_ref(&self) -> &str {
        self.0.as_str()
    }
}

/// A digest compared with one held as text (a record's, an SDK's).
impl PartialEq<String> for ImageDigest {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ImageDigest {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<Digest> for ImageDigest {
    fn eq(&self, other: &Digest) -> bool {
        &self.0 == other
    }
}

impl PartialEq<ImageDigest> for Digest {
    fn eq(&self, other: &ImageDigest) -> bool {
        self == &other.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f";

    #[test]
    fn only_full_lower_case_sha256_digests_parse() {
        assert_eq!(Digest::parse(DIGEST).unwrap().as_str(), DIGEST);
        for bad in ["sha256:abc", "", "sha256:", "sha512:4f4f", &DIGEST.to_uppercase(), &format!("{DIGEST} ")]
        {
            assert_eq!(Digest::parse(bad), Err(NotADigest(bad.to_owned())), "{bad:?}");
        }
        assert_eq!(NotADigest("sha256:abc".into()).to_string(), "\"sha256:abc\" is not a sha256 digest");
    }

    #[test]
    fn a_digest_is_its_text_in_json_and_a_bad_one_does_not_read() {
        let d = Digest::parse(DIGEST).unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{DIGEST}\""));
        assert_eq!(serde_json::from_str::<Digest>(&format!("\"{DIGEST}\"")).unwrap(), d);
        assert!(serde_json::from_str::<Digest>("\"sha256:abc\"").is_err());
        let image = ImageDigest::scanned(d.clone());
        assert_eq!(serde_json::to_string(&image).unwrap(), format!("\"{DIGEST}\""));
        assert_eq!(image, d);
    }

    #[test]
    fn the_digest_of_bytes_is_their_sha256() {
        assert_eq!(
            Digest::of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(DIGEST).unwrap().short(), "sha256:4f4f4f4f4f4f");
    }
}
