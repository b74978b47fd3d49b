//! Publishing notifications to an SNS topic.

use std::collections::BTreeMap;

use aws_sdk_sns::types::MessageAttributeValue;

use crate::error::{AwsError, aws_err};

/// A message ready to publish. Attributes are strings, for subscription
/// filter policies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub body: String,
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Topic {
    client: aws_sdk_sns::Client,
    arn: String,
}

impl Topic {
    pub fn new(client: aws_sdk_sns::Client, arn: impl Into<String>) -> Self {
        Self { client, arn: arn.into() }
    }

    /// The topic `arn`, through a client of its own built from `sdk`.
    pub fn connect(sdk: &aws_config::SdkConfig, arn: impl Into<String>) -> Self {
        Self::new(aws_sdk_sns::Client::new(sdk), arn)
    }

    /// Publishes and returns the message id.
    pub async fn publish(&self, message: &Message) -> Result<String, AwsError> {
        let mut request =
            self.client.publish().topic_arn(&self.arn).subject(&message.subject).message(&message.body);
        for (name, value) in &message.attributes {
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| AwsError::new("SNS", "Publish", format!("attribute {name}: {e}")))?;
            request = request.message_attributes(name, attribute);
        }
        let output = request.send().await.map_err(aws_err("SNS", "Publish"))?;
        Ok(output.message_id().unwrap_or_default().to_owned())
    }
}
