//! Reading a secret from AWS Secrets Manager (once, at start).

use shipgate_core::webhook::WebhookSecret;

use crate::error::{AwsError, aws_err};

/// The secret string of `secret_id` (an ARN or name), as a webhook secret.
pub async fn webhook_secret(sdk: &aws_config::SdkConfig, secret_id: &str) -> Result<WebhookSecret, AwsError> {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let output = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(aws_err("SecretsManager", "GetSecretValue"))?;
    // Trimmed first: a whitespace-only secret would be an empty HMAC key.
    let secret = output.secret_string().map(str::trim).filter(|s| !s.is_empty()).ok_or_else(|| {
        AwsError::new(
            "SecretsManager",
            "GetSecretValue",
            format!("{secret_id} has no secret string (it is empty)"),
        )
    })?;
    Ok(WebhookSecret::new(secret.as_bytes().to_vec()))
}
