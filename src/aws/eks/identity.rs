//! The cluster's IAM: the cluster and worker roles, the OIDC provider of the cluster's issuer
//! and the service-account (IRSA) roles, as aws-builder v0.4.7 makes them. Names are fixed by
//! the cluster's name, so "already exists" means an earlier run made it: it is looked up and
//! completed (missing policy attachments added), never made twice.

use aws_sdk_iam::types::PolicyScopeType;
use aws_sdk_iam::Client;
use serde_json::{json, Value};

use super::inventory::{EksInventory, RoleInventory};
use super::plan::ServiceRole;
use super::{Progress, Tags};
use crate::aws::error::{aws_err, AwsError};
use crate::aws::iam::{ensure_role, RoleSpec};

const CLUSTER_POLICY: &str = "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy";
const WORKER_POLICIES: [&str; 3] = [
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
];
const EBS_CSI_POLICY: &str = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy";

/// The audience of service-account tokens IAM accepts.
const STS_AUDIENCE: &str = "sts.amazonaws.com";

fn service_trust(service: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": [service]},
            "Action": "sts:AssumeRole"
        }]
    })
}

/// The issuer without its scheme, as IAM names OIDC providers.
fn bare_issuer(issuer: &str) -> &str {
    issuer.trim_start_matches("https://")
}

/// Trust for a Kubernetes service account of the cluster (IRSA).
pub(crate) fn service_account_trust(
    account_id: &str,
    issuer: &str,
    namespace: &str,
    name: &str,
) -> Value {
    let bare = bare_issuer(issuer);
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": format!("arn:aws:iam::{account_id}:oidc-provider/{bare}")},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                format!("{bare}:sub"): format!("system:serviceaccount:{namespace}:{name}"),
                format!("{bare}:aud"): STS_AUDIENCE,
            }}
        }]
    })
}

/// `cluster-role-<n>`: EKS's service role.
pub async fn cluster_role(
    iam: &Client,
    tags: &Tags,
    inv: &mut EksInventory,
) -> Result<Progress, AwsError> {
    let name = checked_role_name(format!("cluster-role-{}", tags.name))?;
    inv.cluster_role = ensure_role(
        iam,
        tags,
        RoleSpec {
            name: &name,
            path: None,
            trust: &service_trust("eks.amazonaws.com"),
            policies: &[CLUSTER_POLICY.to_string()],
            boundary: None,
        },
    )
    .await?;
    Ok(Progress::Advanced)
}

/// `worker-role-<n>`: the node group's instance role.
pub async fn worker_role(
    iam: &Client,
    tags: &Tags,
    inv: &mut EksInventory,
) -> Result<Progress, AwsError> {
    let name = checked_role_name(format!("worker-role-{}", tags.name))?;
    let policies: Vec<String> = WORKER_POLICIES.iter().map(|p| p.to_string()).collect();
    inv.worker_role = ensure_role(
        iam,
        tags,
        RoleSpec {
            name: &name,
            path: None,
            trust: &service_trust("ec2.amazonaws.com"),
            policies: &policies,
            boundary: None,
        },
    )
    .await?;
    Ok(Progress::Advanced)
}

/// IAM's limit on role names (aws-builder checks it before calling IAM).
fn checked_role_name(name: String) -> Result<String, AwsError> {
    if name.chars().count() > 64 {
        return Err(AwsError::conflict(
            "iam:CreateRole",
            format!(
                "role name {name:?} is longer than IAM's 64 characters; use a shorter runtime name"
            ),
        ));
    }
    Ok(name)
}

/// The IAM OIDC provider of the cluster's issuer. No thumbprint is sent: IAM takes the
/// issuer's certificate authority itself (aws-builder dials the issuer to compute one).
pub async fn oidc_provider(iam: &Client, inv: &mut EksInventory) -> Result<Progress, AwsError> {
    let issuer = inv.cluster.oidc_provider_url.clone();
    let made = iam
        .create_open_id_connect_provider()
        .url(&issuer)
        .client_id_list(STS_AUDIENCE)
        .send()
        .await
        .map_err(aws_err("iam:CreateOpenIDConnectProvider"));
    let arn = match made {
        Ok(out) => out.open_id_connect_provider_arn().map(str::to_string),
        Err(e) if e.is(&["EntityAlreadyExists"]) => iam
            .list_open_id_connect_providers()
            .send()
            .await
            .map_err(aws_err("iam:ListOpenIDConnectProviders"))?
            .open_id_connect_provider_list()
            .iter()
            .filter_map(|p| p.arn())
            .find(|arn| arn.ends_with(bare_issuer(&issuer)))
            .map(str::to_string),
        Err(e) => return Err(e),
    }
    .ok_or_else(|| {
        AwsError::unexpected(
            "iam:CreateOpenIDConnectProvider",
            "no provider ARN for the issuer",
        )
    })?;
    inv.oidc_provider_arn = arn;
    Ok(Progress::Advanced)
}

/// What a service-account role is for: its policy (made by us, or AWS-managed), its role name
/// and path, and the service account that may assume it (Threeport's support services).
struct RoleDesign {
    policy: Option<(String, &'static str, Value)>,
    managed_policy: Option<&'static str>,
    role: String,
    path: Option<String>,
    service_account: (&'static str, &'static str),
}

fn design(role: ServiceRole, cluster: &str) -> RoleDesign {
    let route53_change = json!({
        "Effect": "Allow",
        "Action": ["route53:ChangeResourceRecordSets"],
        "Resource": ["arn:aws:route53:::hostedzone/*"]
    });
    match role {
        ServiceRole::DnsManagement => RoleDesign {
            policy: Some((
                format!("DNSUpdates-{cluster}"),
                "Allow cluster services to update Route53 records",
                json!({"Version": "2012-10-17", "Statement": [route53_change, {
                    "Effect": "Allow",
                    "Action": ["route53:ListHostedZones", "route53:ListResourceRecordSets"],
                    "Resource": ["*"]
                }]}),
            )),
            managed_policy: None,
            role: format!("dns-mgmt-role-{cluster}"),
            path: Some(format!("/{cluster}/")),
            service_account: ("nukleros-gateway-system", "external-dns"),
        },
        ServiceRole::Dns01Challenge => RoleDesign {
            policy: Some((
                format!("DNS01Challenge-{cluster}"),
                "Allow cluster services to complete DNS01 challenges",
                json!({"Version": "2012-10-17", "Statement": [route53_change, {
                    "Effect": "Allow",
                    "Action": ["route53:GetChange", "route53:ListHostedZones",
                               "route53:ListResourceRecordSets", "route53:ListHostedZonesByName"],
                    "Resource": ["*"]
                }]}),
            )),
            managed_policy: None,
            role: format!("dns-chlg-role-{cluster}"),
            path: None,
            service_account: ("nukleros-certs-system", "cert-manager"),
        },
        ServiceRole::SecretsManager => RoleDesign {
            policy: Some((
                format!("SecretsManager-{cluster}"),
                "Allow cluster services to manage secrets",
                json!({"Version": "2012-10-17", "Statement": [{
                    "Sid": "SecretsManagerPermissions",
                    "Effect": "Allow",
                    "Action": ["secretsmanager:BatchGetSecretValue", "secretsmanager:ListSecrets",
                               "secretsmanager:CreateSecret", "secretsmanager:DeleteSecret",
                               "secretsmanager:GetSecretValue"],
                    "Resource": ["*"]
                }]}),
            )),
            managed_policy: None,
            role: format!("secrets-manager-role-{cluster}"),
            path: None,
            service_account: ("nukleros-secrets-system", "external-secrets"),
        },
        ServiceRole::ClusterAutoscaling => RoleDesign {
            policy: Some((
                format!("ClusterAutoscaler-{cluster}"),
                "Allow cluster autoscaler to manage node pool sizes",
                json!({"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow",
                    "Action": ["autoscaling:SetDesiredCapacity",
                               "autoscaling:TerminateInstanceInAutoScalingGroup"],
                    "Resource": ["*"],
                    "Condition": {"StringEquals": {
                        format!("aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster}"): "owned"
                    }}
                }, {
                    "Effect": "Allow",
                    "Action": ["autoscaling:DescribeAutoScalingInstances",
                               "autoscaling:DescribeAutoScalingGroups",
                               "ec2:DescribeLaunchTemplateVersions", "autoscaling:DescribeTags",
                               "autoscaling:DescribeLaunchConfigurations",
                               "ec2:DescribeInstanceTypes"],
                    "Resource": ["*"]
                }]}),
            )),
            managed_policy: None,
            role: format!("ca-role-{cluster}"),
            path: None,
            service_account: ("kube-system", "cluster-autoscaler"),
        },
        ServiceRole::StorageManagement => RoleDesign {
            policy: None,
            managed_policy: Some(EBS_CSI_POLICY),
            role: format!("csi-role-{cluster}"),
            path: None,
            service_account: ("kube-system", "ebs-csi-controller-sa"),
        },
    }
}

/// A customer-managed policy under the path `/<cluster>/`, made or found; its ARN.
async fn ensure_policy(
    iam: &Client,
    cluster: &str,
    name: &str,
    description: &str,
    document: &Value,
) -> Result<String, AwsError> {
    let path = format!("/{cluster}/");
    let made = iam
        .create_policy()
        .policy_name(name)
        .path(&path)
        .description(description)
        .policy_document(document.to_string())
        .send()
        .await
        .map_err(aws_err("iam:CreatePolicy"));
    match made {
        Ok(out) => out
            .policy()
            .and_then(|p| p.arn())
            .map(str::to_string)
            .ok_or_else(|| AwsError::unexpected("iam:CreatePolicy", "no policy ARN")),
        Err(e) if e.is(&["EntityAlreadyExists"]) => iam
            .list_policies()
            .scope(PolicyScopeType::Local)
            .path_prefix(&path)
            .send()
            .await
            .map_err(aws_err("iam:ListPolicies"))?
            .policies()
            .iter()
            .find(|p| p.policy_name() == Some(name))
            .and_then(|p| p.arn())
            .map(str::to_string)
            .ok_or_else(|| {
                AwsError::unexpected("iam:ListPolicies", format!("policy {name} not listed"))
            }),
        Err(e) => Err(e),
    }
}

/// A service-account role with its policy.
pub async fn service_role(
    iam: &Client,
    tags: &Tags,
    account_id: &str,
    role: ServiceRole,
    inv: &mut EksInventory,
) -> Result<Progress, AwsError> {
    let d = design(role, &tags.name);
    let policy_arn = match (&d.policy, d.managed_policy) {
        (Some((name, description, document)), _) => {
            let arn = ensure_policy(iam, &tags.name, name, description, document).await?;
            if !inv.policy_arns.contains(&arn) {
                inv.policy_arns.push(arn.clone());
            }
            arn
        }
        (None, Some(managed)) => managed.to_string(),
        (None, None) => unreachable!("every role design names a policy"),
    };
    let (namespace, account) = d.service_account;
    let trust = service_account_trust(
        account_id,
        &inv.cluster.oidc_provider_url,
        namespace,
        account,
    );
    let name = checked_role_name(d.role)?;
    let made = ensure_role(
        iam,
        tags,
        RoleSpec {
            name: &name,
            path: d.path.as_deref(),
            trust: &trust,
            policies: &[policy_arn],
            boundary: None,
        },
    )
    .await?;
    *role_slot(inv, role) = made;
    Ok(Progress::Advanced)
}

fn role_slot(inv: &mut EksInventory, role: ServiceRole) -> &mut RoleInventory {
    match role {
        ServiceRole::DnsManagement => &mut inv.dns_management_role,
        ServiceRole::Dns01Challenge => &mut inv.dns01_challenge_role,
        ServiceRole::SecretsManager => &mut inv.secrets_manager_role,
        ServiceRole::ClusterAutoscaling => &mut inv.cluster_autoscaling_role,
        ServiceRole::StorageManagement => &mut inv.storage_management_role,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account_trust_names_the_issuer_and_the_account() {
        let t = service_account_trust(
            "123456789012",
            "https://oidc.eks.us-east-1.amazonaws.com/id/ABC",
            "kube-system",
            "ebs-csi-controller-sa",
        );
        let s = &t["Statement"][0];
        assert_eq!(
            s["Principal"]["Federated"],
            "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC"
        );
        assert_eq!(
            s["Condition"]["StringEquals"]["oidc.eks.us-east-1.amazonaws.com/id/ABC:sub"],
            "system:serviceaccount:kube-system:ebs-csi-controller-sa"
        );
        assert_eq!(
            s["Condition"]["StringEquals"]["oidc.eks.us-east-1.amazonaws.com/id/ABC:aud"],
            "sts.amazonaws.com"
        );
    }

    #[test]
    fn role_names_follow_aws_builder() {
        let names: Vec<String> = ServiceRole::ALL
            .iter()
            .map(|r| design(*r, "c").role)
            .collect();
        assert_eq!(
            names,
            [
                "dns-mgmt-role-c",
                "dns-chlg-role-c",
                "secrets-manager-role-c",
                "ca-role-c",
                "csi-role-c"
            ]
        );
        assert_eq!(
            design(ServiceRole::DnsManagement, "c").path.as_deref(),
            Some("/c/")
        );
        assert!(checked_role_name("x".repeat(65)).is_err());
        assert!(checked_role_name("x".repeat(64)).is_ok());
    }
}
