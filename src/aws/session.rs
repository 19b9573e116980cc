//! AWS sessions for an AwsAccount: credentials resolved as Threeport resolves them
//! (`GetAwsConfigFromAwsAccount`, spec 3.6), on this manager's HTTP stack.
//!
//! - `AccessKeyID` and `SecretAccessKey` (both, decrypted with the manager's encryption key)
//!   are static credentials; neither set means the default chain of the process (the IRSA web
//!   identity of the manager's service account, environment, instance profile). Only one of
//!   them set is a broken account and a permanent error.
//! - With a `RoleArn`, the role is assumed (with the account's `ExternalId` and the configured
//!   session name), unless those credentials already are an assumed role in the account's own
//!   AWS account (Threeport's "IRSA in the same account" shortcut).
//!
//! One HTTPS client (rustls with ring, as the rest of the manager) is shared by every session,
//! so connections are pooled across reconciles.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

use super::error::{aws_err, AwsError};
use crate::config::AwsConfig;
use crate::threeport::crypto::EncryptionKey;
use crate::threeport::models::AwsAccount;

/// How long assumed-role credentials last; a session lives for one reconcile.
const ASSUMED_ROLE_DURATION: Duration = Duration::from_secs(3600);

/// Makes sessions for AwsAccounts; one per process, shared by the aws and secret reconcilers.
pub struct AwsSessions {
    settings: AwsConfig,
    key: Option<EncryptionKey>,
    http: SharedHttpClient,
}

impl AwsSessions {
    /// Sessions configured by the `aws` section, decrypting access keys with `key` (without a
    /// key they are used as they are, as Threeport does on control planes without encryption).
    pub fn new(settings: AwsConfig, key: Option<EncryptionKey>) -> Self {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        Self {
            settings,
            key,
            http,
        }
    }

    /// The `aws` config section these sessions follow.
    pub fn settings(&self) -> &AwsConfig {
        &self.settings
    }

    /// A session for `account` in `region`.
    pub async fn for_account(
        &self,
        account: &AwsAccount,
        region: &str,
    ) -> Result<AwsSession, AwsError> {
        let account_name = account.name.as_deref().unwrap_or("");
        let keys = match (&account.access_key_id, &account.secret_access_key) {
            (Some(id), Some(secret)) if !id.expose().is_empty() && !secret.expose().is_empty() => {
                Some((self.plain(id.expose())?, self.plain(secret.expose())?))
            }
            (None, None) => None,
            (Some(id), Some(secret)) if id.expose().is_empty() && secret.expose().is_empty() => {
                None
            }
            _ => {
                return Err(AwsError::conflict(
                    "credentials",
                    format!(
                        "AwsAccount {account_name:?} has only one of AccessKeyID and \
                         SecretAccessKey"
                    ),
                ))
            }
        };
        let credentials = match keys {
            Some((id, secret)) => SharedCredentialsProvider::new(Credentials::new(
                id,
                secret,
                None,
                None,
                "threeport-aws-account",
            )),
            None => SharedCredentialsProvider::new(
                aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
                    .region(Region::new(region.to_string()))
                    .build()
                    .await,
            ),
        };
        let base = self.config(region, credentials);
        let role_arn = account.role_arn.as_deref().unwrap_or("").trim();
        let account_id = account.account_id.clone().unwrap_or_default();
        if role_arn.is_empty() {
            return Ok(AwsSession::new(base, &self.settings, account_id, region));
        }

        let sts = aws_sdk_sts::Client::new(&base);
        let caller = sts
            .get_caller_identity()
            .send()
            .await
            .map_err(aws_err("sts:GetCallerIdentity"))?;
        let already_assumed = caller.arn().is_some_and(|a| a.contains(":assumed-role/"))
            && caller.account() == Some(account_id.as_str());
        if already_assumed {
            return Ok(AwsSession::new(base, &self.settings, account_id, region));
        }

        let mut assume = sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(&self.settings.role_session_name)
            .duration_seconds(ASSUMED_ROLE_DURATION.as_secs() as i32);
        if let Some(external_id) = account.external_id.as_deref().filter(|e| !e.is_empty()) {
            assume = assume.external_id(external_id);
        }
        let assumed = assume.send().await.map_err(aws_err("sts:AssumeRole"))?;
        let credentials = assumed.credentials().ok_or_else(|| {
            AwsError::unexpected("sts:AssumeRole", "the answer has no credentials")
        })?;
        let provider = SharedCredentialsProvider::new(Credentials::new(
            credentials.access_key_id(),
            credentials.secret_access_key(),
            Some(credentials.session_token().to_string()),
            None,
            "threeport-assumed-role",
        ));
        let assumed = self.config(region, provider);
        Ok(AwsSession::new(assumed, &self.settings, account_id, region))
    }

    fn config(&self, region: &str, credentials: SharedCredentialsProvider) -> SdkConfig {
        let mut builder = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .http_client(self.http.clone())
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(self.settings.call_timeout)
                    .connect_timeout(Duration::from_secs(10).min(self.settings.call_timeout))
                    .build(),
            )
            .sleep_impl(aws_smithy_async::rt::sleep::TokioSleep::new())
            .time_source(aws_smithy_async::time::SystemTimeSource::new())
            .credentials_provider(credentials);
        if let Some(endpoint) = &self.settings.endpoint_url {
            builder = builder.endpoint_url(endpoint);
        }
        builder.build()
    }

    fn plain(&self, value: &str) -> Result<String, AwsError> {
        match &self.key {
            Some(key) => key.decrypt(value).map_err(|e| {
                AwsError::conflict(
                    "credentials",
                    format!("cannot decrypt the AwsAccount's access keys: {e}"),
                )
            }),
            None => Ok(value.to_string()),
        }
    }
}

/// Credentials and region for one AwsAccount; makes the service clients.
#[derive(Clone)]
pub struct AwsSession {
    config: SdkConfig,
    /// The configured endpoint (a local AWS or proxy), if any.
    endpoint: Option<String>,
    /// The AwsAccount's 12-digit AWS account ID.
    pub account_id: String,
    /// The region every client of this session calls.
    pub region: String,
}

impl AwsSession {
    fn new(config: SdkConfig, settings: &AwsConfig, account_id: String, region: &str) -> Self {
        Self {
            config,
            endpoint: settings.endpoint_url.clone(),
            account_id,
            region: region.to_string(),
        }
    }

    /// The SDK configuration (credentials, region, endpoint, HTTP client).
    pub fn sdk_config(&self) -> &SdkConfig {
        &self.config
    }

    /// EC2 and VPC.
    pub fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.config)
    }

    /// EKS.
    pub fn eks(&self) -> aws_sdk_eks::Client {
        aws_sdk_eks::Client::new(&self.config)
    }

    /// IAM.
    pub fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.config)
    }

    /// RDS.
    pub fn rds(&self) -> aws_sdk_rds::Client {
        aws_sdk_rds::Client::new(&self.config)
    }

    /// S3 (path-style addressing when an endpoint is configured: a local AWS or proxy
    /// answers on one host, so buckets go in the path).
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.config)
            .force_path_style(self.endpoint.is_some())
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// S3 Control. With a configured endpoint, calls go to that endpoint as it is: AWS's
    /// rules would put the account ID in front of its host (`<account>.s3-control...`),
    /// which names no host of a local AWS or proxy.
    pub fn s3_control(&self) -> aws_sdk_s3control::Client {
        let mut config = aws_sdk_s3control::config::Builder::from(&self.config);
        if let Some(endpoint) = &self.endpoint {
            config = config.endpoint_resolver(FixedEndpoint(endpoint.clone()));
        }
        aws_sdk_s3control::Client::from_conf(config.build())
    }

    /// Secrets Manager.
    pub fn secrets_manager(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.config)
    }
}

/// An S3 Control endpoint that is the configured URL, whatever the operation's parameters.
#[derive(Debug)]
struct FixedEndpoint(String);

impl aws_sdk_s3control::config::endpoint::ResolveEndpoint for FixedEndpoint {
    fn resolve_endpoint<'a>(
        &'a self,
        _params: &'a aws_sdk_s3control::config::endpoint::Params,
    ) -> aws_smithy_runtime_api::client::endpoint::EndpointFuture<'a> {
        aws_smithy_runtime_api::client::endpoint::EndpointFuture::ready(Ok(
            aws_smithy_types::endpoint::Endpoint::builder()
                .url(self.0.clone())
                .build(),
        ))
    }
}
