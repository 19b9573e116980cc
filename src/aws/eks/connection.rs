//! How a client reaches an EKS cluster: its API endpoint, its CA, and a bearer token in the
//! format of aws-iam-authenticator (which EKS runs): `k8s-aws-v1.` followed by the unpadded
//! URL-safe base64 of an STS `GetCallerIdentity` URL presigned for 60 seconds with the header
//! `x-k8s-aws-id: <cluster>` signed in. The token is good for 15 minutes; like Threeport, the
//! recorded expiry is one minute earlier (14 minutes).

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine;
use time::OffsetDateTime;

use crate::aws::error::{aws_err, AwsError};
use crate::aws::session::AwsSession;

/// How long the presigned URL inside a token is valid for STS.
const PRESIGN_FOR: Duration = Duration::from_secs(60);
/// The token's recorded lifetime (aws-iam-authenticator accepts 15 minutes).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(14 * 60);
/// The token format's prefix.
const TOKEN_PREFIX: &str = "k8s-aws-v1.";

/// Endpoint, CA and token of an active cluster.
#[derive(Clone)]
pub struct EksConnection {
    /// The Kubernetes API URL.
    pub api_endpoint: String,
    /// The cluster CA, PEM.
    pub ca_certificate: String,
    /// The bearer token.
    pub token: String,
    /// When the token stops being accepted (minus a minute).
    pub token_expiration: OffsetDateTime,
}

impl std::fmt::Debug for EksConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EksConnection")
            .field("api_endpoint", &self.api_endpoint)
            .field("token", &"[redacted]")
            .field("token_expiration", &self.token_expiration)
            .finish()
    }
}

/// DescribeCluster and a fresh token.
pub async fn connection(session: &AwsSession, cluster: &str) -> Result<EksConnection, AwsError> {
    let described = session
        .eks()
        .describe_cluster()
        .name(cluster)
        .send()
        .await
        .map_err(aws_err("eks:DescribeCluster"))?
        .cluster
        .ok_or_else(|| AwsError::unexpected("eks:DescribeCluster", "no cluster in the answer"))?;
    let api_endpoint = described
        .endpoint()
        .filter(|e| !e.is_empty())
        .ok_or_else(|| {
            AwsError::unexpected("eks:DescribeCluster", "the cluster has no endpoint yet")
        })?
        .to_string();
    let ca_b64 = described
        .certificate_authority()
        .and_then(|c| c.data())
        .ok_or_else(|| AwsError::unexpected("eks:DescribeCluster", "the cluster has no CA yet"))?;
    let ca = base64::engine::general_purpose::STANDARD
        .decode(ca_b64.trim())
        .map_err(|e| {
            AwsError::unexpected(
                "eks:DescribeCluster",
                format!("the cluster CA is not base64: {e}"),
            )
        })?;
    // EKS's CA is a PEM certificate. Anything else would be useless to every client of the
    // runtime (and bytes such as NUL make the API's PATCH fail with a 500 forever), so it
    // is refused here, by name.
    let ca_certificate = String::from_utf8(ca)
        .ok()
        .filter(|pem| pem.trim_start().starts_with("-----BEGIN CERTIFICATE-----"))
        .ok_or_else(|| {
            AwsError::conflict(
                "eks:DescribeCluster",
                format!("the certificate authority EKS reports for cluster {cluster} is not a PEM certificate"),
            )
        })?;
    let now = SystemTime::now();
    let token = token(session, cluster, now).await?;
    Ok(EksConnection {
        api_endpoint,
        ca_certificate,
        token,
        token_expiration: OffsetDateTime::from(now) + TOKEN_LIFETIME,
    })
}

/// A token for `cluster` signed with the session's credentials at `now`.
pub async fn token(
    session: &AwsSession,
    cluster: &str,
    now: SystemTime,
) -> Result<String, AwsError> {
    let provider = session
        .sdk_config()
        .credentials_provider()
        .ok_or_else(|| AwsError::conflict("sts:presign", "the session has no credentials"))?;
    let credentials = provider
        .provide_credentials()
        .await
        .map_err(|e| AwsError::unexpected("sts:presign", format!("credentials: {e}")))?;
    presigned_token(&credentials.into(), &session.region, cluster, now)
}

/// The token for `identity` (pure: the same inputs give the same token).
pub fn presigned_token(
    identity: &Identity,
    region: &str,
    cluster: &str,
    now: SystemTime,
) -> Result<String, AwsError> {
    let host = format!("sts.{region}.amazonaws.com");
    let url = format!("https://{host}/?Action=GetCallerIdentity&Version=2011-06-15");
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(PRESIGN_FOR);
    let fail = |e: &dyn std::fmt::Display| AwsError::conflict("sts:presign", e.to_string());
    let params = v4::SigningParams::builder()
        .identity(identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| fail(&e))?
        .into();
    let headers = [("host", host.as_str()), ("x-k8s-aws-id", cluster)];
    let request = SignableRequest::new("GET", &url, headers.into_iter(), SignableBody::Bytes(&[]))
        .map_err(|e| fail(&e))?;
    let (instructions, _) = sign(request, &params).map_err(|e| fail(&e))?.into_parts();
    let (_, query) = instructions.into_parts();
    let mut signed = url::Url::parse(&url).map_err(|e| fail(&e))?;
    {
        let mut pairs = signed.query_pairs_mut();
        for (key, value) in &query {
            pairs.append_pair(key, value);
        }
    }
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signed.as_str())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;

    #[test]
    fn token_is_a_presigned_get_caller_identity_for_the_cluster() {
        let creds = Credentials::new("AKIDEXAMPLE", "secret-never-shown", None, None, "test");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let token = presigned_token(&creds.into(), "us-east-1", "c1", now).unwrap();
        let b64 = token.strip_prefix(TOKEN_PREFIX).expect("prefix");
        assert!(!b64.contains('='), "unpadded");
        let url = String::from_utf8(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(b64)
                .unwrap(),
        )
        .unwrap();
        let parsed = url::Url::parse(&url).unwrap();
        assert_eq!(parsed.host_str(), Some("sts.us-east-1.amazonaws.com"));
        let q: std::collections::HashMap<String, String> =
            parsed.query_pairs().into_owned().collect();
        assert_eq!(q["Action"], "GetCallerIdentity");
        assert_eq!(q["X-Amz-Expires"], "60");
        assert_eq!(q["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
        assert!(
            q["X-Amz-Credential"].starts_with("AKIDEXAMPLE/20231114/us-east-1/sts/aws4_request")
        );
        assert!(q["X-Amz-SignedHeaders"]
            .split(';')
            .any(|h| h == "x-k8s-aws-id"));
        assert_eq!(q["X-Amz-Signature"].len(), 64);
        assert!(!url.contains("secret-never-shown"));
        // Deterministic for the same inputs; another cluster gets another signature.
        let again = presigned_token(
            &Credentials::new("AKIDEXAMPLE", "secret-never-shown", None, None, "t").into(),
            "us-east-1",
            "c1",
            now,
        )
        .unwrap();
        assert_eq!(token, again);
        let other = presigned_token(
            &Credentials::new("AKIDEXAMPLE", "secret-never-shown", None, None, "t").into(),
            "us-east-1",
            "c2",
            now,
        )
        .unwrap();
        assert_ne!(token, other);
    }
}
