"""ECR as AWS answers it: seeded scan findings, digests of the manifest as
pushed, `BatchGetImage` of seeded images, and the blob APIs."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any, NoReturn

from moto.core.exceptions import JsonRESTError
from moto.ecr.models import ECRBackend, ecr_backends
from moto.ecr.responses import ECRResponse

import iam_enforcement
from state import DEFAULT_PAGE, MAX_PAGE, STATE, fail

_original_describe_image_scan_findings = ECRResponse.describe_image_scan_findings


def _severity_counts(findings: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for finding in findings:
        severity = finding.get("severity", "UNDEFINED")
        counts[severity] = counts.get(severity, 0) + 1
    return counts


def describe_image_scan_findings(self: ECRResponse) -> Any:
    params = json.loads(self.body or "{}")
    repository = params.get("repositoryName", "")
    digest = (params.get("imageId") or {}).get("imageDigest", "")
    with STATE.lock:
        scan = STATE.scans.get((self.region, repository, digest))
    if scan is None:
        return _original_describe_image_scan_findings(self)
    action = "DescribeImageScanFindings"
    # The repository must exist, as in AWS; moto raises its own error otherwise.
    ecr_backends[self.current_account][self.region]._get_repository(repository, None)
    if scan["status"] == "SCAN_NOT_FOUND":
        fail("ecr", action, params, "ScanNotFoundException",
              f"Image scan does not exist for the image with '{{imageDigest:'{digest}'}}' "
              f"in the repository with name '{repository}'")

    max_results = int(params.get("maxResults") or DEFAULT_PAGE)
    if not 1 <= max_results <= MAX_PAGE:
        fail("ecr", action, params, "InvalidParameterException",
              f"maxResults must be between 1 and {MAX_PAGE}")
    token = params.get("nextToken")
    start = 0
    if token:
        prefix = f"{repository}/{digest}/"
        if not token.startswith(prefix) or not token[len(prefix):].isdigit():
            fail("ecr", action, params, "InvalidParameterException", "Invalid nextToken")
        start = int(token[len(prefix):])

    basic = scan.get("findings", [])
    enhanced = scan.get("enhancedFindings", [])
    if enhanced:
        iam_enforcement.require(
            self, "inspector2:ListFindings", {},
            "DescribeImageScanFindings of an image with enhanced findings also needs inspector2:ListFindings",
        )
    # Both lists are paged as one sequence: basic findings first, then enhanced.
    everything = [("findings", f) for f in basic] + [("enhancedFindings", f) for f in enhanced]
    page = everything[start : start + max_results]
    findings_block: dict[str, Any] = {
        "findingSeverityCounts": _severity_counts(basic + enhanced),
    }
    if scan["status"] in ("COMPLETE", "ACTIVE"):
        findings_block["imageScanCompletedAt"] = scan.get(
            "completedAt", datetime.now(UTC).timestamp()
        )
        findings_block["vulnerabilitySourceUpdatedAt"] = findings_block["imageScanCompletedAt"]
        findings_block["findings"] = [f for kind, f in page if kind == "findings"]
        # ECR's EnhancedImageScanFinding has no EPSS score; Inspector's Finding does.
        findings_block["enhancedFindings"] = [
            {k: v for k, v in f.items() if k != "epss"} for kind, f in page if kind == "enhancedFindings"
        ]
    response: dict[str, Any] = {
        "registryId": self.current_account,
        "repositoryName": repository,
        "imageId": {"imageDigest": digest, **({"imageTag": scan["imageTag"]} if scan.get("imageTag") else {})},
        "imageScanStatus": {"status": scan["status"], "description": scan.get("description", "")},
    }
    if scan["status"] in ("COMPLETE", "ACTIVE"):
        response["imageScanFindings"] = findings_block
        if start + max_results < len(everything):
            response["nextToken"] = f"{repository}/{digest}/{start + max_results}"
    with STATE.lock:
        STATE.record("ecr", action, params, scan["status"])
    return json.dumps(response)


def _manifest_digest(manifest: str) -> str:
    """ECR's digest of a manifest: SHA-256 over the bytes as pushed."""
    return "sha256:" + hashlib.sha256(manifest.encode("utf-8")).hexdigest()


def _create_digest(self: Any) -> None:
    self._image_digest = _manifest_digest(self.image_manifest)


class ImageDigestDoesNotMatchException(JsonRESTError):
    def __init__(self, message: str) -> None:
        super().__init__("ImageDigestDoesNotMatchException", message)


_original_put_image = ECRBackend.put_image


def put_image(self: Any, repository_name: str, image_manifest: str, image_tag: str,
              image_manifest_mediatype: str | None = None, digest: str | None = None) -> Any:
    if digest and digest != _manifest_digest(image_manifest):
        raise ImageDigestDoesNotMatchException(
            f"Invalid parameter at 'imageDigest' failed to satisfy constraint: "
            f"'{digest}' does not match the digest of the manifest")
    return _original_put_image(self, repository_name, image_manifest, image_tag,
                               image_manifest_mediatype, None)


# What a scan-seeded image answers as: one linux/amd64 image, whose config
# every repository can serve.
_SEEDED_CONFIG = json.dumps(
    {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
).encode()
_SEEDED_CONFIG_DIGEST = _manifest_digest(_SEEDED_CONFIG.decode())
_SEEDED_MANIFEST = json.dumps({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": _SEEDED_CONFIG_DIGEST, "size": len(_SEEDED_CONFIG)},
    "layers": [],
})


def _ecr_error(code: str, message: str) -> NoReturn:
    raise JsonRESTError(code, message)


def initiate_layer_upload(self: ECRResponse) -> Any:
    params = json.loads(self.body or "{}")
    repository = params.get("repositoryName", "")
    backend = ecr_backends[self.current_account][self.region]
    backend._get_repository(repository, None)
    upload_id = str(uuid.uuid4())
    with STATE.lock:
        STATE.uploads[upload_id] = (self.region, repository, bytearray())
    return json.dumps({"uploadId": upload_id, "partSize": 10 * 1024 * 1024})


def upload_layer_part(self: ECRResponse) -> Any:
    params = json.loads(self.body or "{}")
    upload_id = params.get("uploadId", "")
    with STATE.lock:
        upload = STATE.uploads.get(upload_id)
        if upload is None:
            _ecr_error("UploadNotFoundException", f"upload {upload_id} does not exist")
        part = base64.b64decode(params.get("layerPartBlob", ""))
        if int(params.get("partFirstByte", 0)) != len(upload[2]):
            _ecr_error("InvalidLayerPartException", "partFirstByte is not the next byte of the upload")
        upload[2].extend(part)
        last = len(upload[2]) - 1
    return json.dumps({"registryId": self.current_account, "repositoryName": upload[1],
                       "uploadId": upload_id, "lastByteReceived": last})


def complete_layer_upload(self: ECRResponse) -> Any:
    params = json.loads(self.body or "{}")
    upload_id = params.get("uploadId", "")
    digests = params.get("layerDigests") or []
    with STATE.lock:
        upload = STATE.uploads.pop(upload_id, None)
        if upload is None:
            _ecr_error("UploadNotFoundException", f"upload {upload_id} does not exist")
        region, repository, data = upload
        actual = "sha256:" + hashlib.sha256(bytes(data)).hexdigest()
        if digests != [actual]:
            _ecr_error("InvalidLayerException", f"the layer's digest is {actual}, not {digests}")
        STATE.blobs[(region, repository, actual)] = bytes(data)
    return json.dumps({"registryId": self.current_account, "repositoryName": repository,
                       "uploadId": upload_id, "layerDigest": actual})


def get_download_url_for_layer(self: ECRResponse) -> Any:
    params = json.loads(self.body or "{}")
    repository, digest = params.get("repositoryName", ""), params.get("layerDigest", "")
    ecr_backends[self.current_account][self.region]._get_repository(repository, None)
    with STATE.lock:
        known = (self.region, repository, digest) in STATE.blobs or digest == _SEEDED_CONFIG_DIGEST
        STATE.record("ecr", "GetDownloadUrlForLayer", params, "found" if known else "LayersNotFoundException")
    if not known:
        _ecr_error("LayersNotFoundException", f"The image layer {digest} does not exist in the repository {repository}")
    host = self.headers.get("Host", "127.0.0.1")
    url = f"http://{host}/_shipgate/ecr/blobs/{self.region}/{repository}/{digest}"
    return json.dumps({"downloadUrl": url, "layerDigest": digest})


def blob(region: str, repository: str, digest: str) -> bytes | None:
    with STATE.lock:
        data = STATE.blobs.get((region, repository, digest))
    if data is None and digest == _SEEDED_CONFIG_DIGEST:
        return _SEEDED_CONFIG
    return data


def batch_get_image(self: ECRResponse) -> Any:
    params = json.loads(self.body or "{}")
    repository_name = params.get("repositoryName", "")
    backend = ecr_backends[self.current_account][self.region]
    repository = backend._get_repository(repository_name, None)  # RepositoryNotFoundException, as AWS
    accepted = params.get("acceptedMediaTypes") or [
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    ]
    images: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    for image_id in params.get("imageIds") or []:
        digest, tag = image_id.get("imageDigest"), image_id.get("imageTag")
        found = [i for i in repository.images
                 if (digest and i.get_image_digest() == digest) or (tag and tag in i.image_tags)]
        with STATE.lock:
            seeded = digest is not None and (self.region, repository_name, digest) in STATE.scans
        if found:
            image = found[0]
            media_type = image.image_manifest_media_type or json.loads(image.image_manifest).get("mediaType")
            body, answered_digest = image.image_manifest, image.get_image_digest()
        elif seeded:
            media_type, body, answered_digest = "application/vnd.oci.image.manifest.v1+json", _SEEDED_MANIFEST, digest
        else:
            failures.append({"imageId": image_id, "failureCode": "ImageNotFound",
                             "failureReason": "Requested image not found"})
            continue
        if media_type not in accepted:
            failures.append({"imageId": image_id, "failureCode": "UnsupportedImageType",
                             "failureReason": f"The requested media type {media_type} is not accepted"})
            continue
        images.append({
            "registryId": repository.registry_id,
            "repositoryName": repository_name,
            "imageId": {"imageDigest": answered_digest, **({"imageTag": tag} if tag else {})},
            "imageManifest": body,
            "imageManifestMediaType": media_type,
        })
    with STATE.lock:
        STATE.record("ecr", "BatchGetImage", params, f"{len(images)} image(s)")
    return json.dumps({"images": images, "failures": failures})


