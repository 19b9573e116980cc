//! The EKS cluster, its node group and its storage add-on. Creation requests are recorded at
//! once; the waits for "active" are separate steps that look once and requeue, so no worker
//! blocks for the 10 to 20 minutes EKS takes (aws-builder polls inside one call for up to an
//! hour).

use std::collections::HashMap;

use aws_sdk_ec2::types::Filter;
use aws_sdk_eks::types::{
    ClusterStatus, NodegroupScalingConfig, NodegroupStatus, VpcConfigRequest,
};
use aws_sdk_eks::Client;

use super::inventory::EksInventory;
use super::{EksSpec, Progress, Tags};
use crate::aws::error::{aws_err, AwsError};

/// The node group's name.
pub fn node_group_name(cluster: &str) -> String {
    format!("{cluster}-private-node-group")
}

/// The storage add-on's name.
pub const STORAGE_ADDON: &str = "aws-ebs-csi-driver";

fn eks_tags(tags: &Tags) -> HashMap<String, String> {
    tags.ec2().into_iter().collect()
}

/// CreateCluster in the private subnets with both endpoints (an existing cluster of this
/// name is adopted).
pub async fn cluster(
    eks: &Client,
    tags: &Tags,
    spec: &EksSpec,
    inv: &mut EksInventory,
) -> Result<Progress, AwsError> {
    let made = eks
        .create_cluster()
        .name(&tags.name)
        .version(&spec.kubernetes_version)
        .role_arn(&inv.cluster_role.role_arn)
        .resources_vpc_config(
            VpcConfigRequest::builder()
                .endpoint_private_access(true)
                .endpoint_public_access(true)
                .set_subnet_ids(Some(inv.private_subnet_ids()))
                .build(),
        )
        .set_tags(Some(eks_tags(tags)))
        .send()
        .await
        .map_err(aws_err("eks:CreateCluster"));
    let arn = match made {
        Ok(out) => out.cluster().and_then(|c| c.arn()).map(str::to_string),
        Err(e) if e.is(&["ResourceInUseException"]) => describe(eks, &tags.name)
            .await?
            .and_then(|c| c.arn().map(str::to_string)),
        Err(e) => return Err(e),
    }
    .ok_or_else(|| AwsError::unexpected("eks:CreateCluster", "no cluster ARN in the answer"))?;
    inv.cluster.cluster_name = tags.name.clone();
    inv.cluster.cluster_arn = arn;
    Ok(Progress::Advanced)
}

async fn describe(
    eks: &Client,
    name: &str,
) -> Result<Option<aws_sdk_eks::types::Cluster>, AwsError> {
    match eks
        .describe_cluster()
        .name(name)
        .send()
        .await
        .map_err(aws_err("eks:DescribeCluster"))
    {
        Ok(out) => Ok(out.cluster),
        Err(e) if e.is(&["ResourceNotFoundException"]) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether the cluster is active; then its OIDC issuer is recorded.
pub async fn cluster_active(
    eks: &Client,
    tags: &Tags,
    inv: &mut EksInventory,
) -> Result<Progress, AwsError> {
    let Some(cluster) = describe(eks, &tags.name).await? else {
        // Deleted behind our back: make it again.
        inv.cluster = Default::default();
        return Err(AwsError::unexpected(
            "eks:DescribeCluster",
            format!("cluster {} is gone; it will be made again", tags.name),
        ));
    };
    match cluster.status() {
        Some(ClusterStatus::Active) => {}
        Some(ClusterStatus::Failed) => {
            return Err(AwsError::conflict(
                "eks:DescribeCluster",
                format!(
                    "cluster {} failed to create; delete the runtime and create it again",
                    tags.name
                ),
            ))
        }
        _ => return Ok(Progress::Waiting("the EKS cluster to be active")),
    }
    let issuer = cluster
        .identity()
        .and_then(|i| i.oidc())
        .and_then(|o| o.issuer())
        .ok_or_else(|| {
            AwsError::unexpected(
                "eks:DescribeCluster",
                "the active cluster has no OIDC issuer",
            )
        })?;
    inv.cluster.oidc_provider_url = issuer.to_string();
    Ok(Progress::Advanced)
}

/// The security group EKS made for the cluster: the one DescribeCluster names, else the one
/// tagged `aws:eks:cluster-name=<name>` (aws-builder's lookup). EKS may not have reported it
/// yet: that is a transient failure.
pub async fn security_group(
    eks: &Client,
    ec2: &aws_sdk_ec2::Client,
    tags: &Tags,
    inv: &mut EksInventory,
) -> Result<Progress, AwsError> {
    let reported = describe(eks, &tags.name)
        .await?
        .and_then(|c| c.resources_vpc_config)
        .and_then(|v| v.cluster_security_group_id)
        .filter(|id| !id.is_empty());
    let id = match reported {
        Some(id) => id,
        None => {
            let found = ec2
                .describe_security_groups()
                .filters(
                    Filter::builder()
                        .name("tag:aws:eks:cluster-name")
                        .values(&tags.name)
                        .build(),
                )
                .send()
                .await
                .map_err(aws_err("ec2:DescribeSecurityGroups"))?;
            match found.security_groups() {
                [one] => one.group_id().unwrap_or_default().to_string(),
                [] => {
                    return Err(AwsError::unexpected(
                        "ec2:DescribeSecurityGroups",
                        format!(
                            "EKS has not made the security group of cluster {} yet",
                            tags.name
                        ),
                    ))
                }
                many => {
                    return Err(AwsError::conflict(
                        "ec2:DescribeSecurityGroups",
                        format!(
                            "{} security groups are tagged aws:eks:cluster-name={}",
                            many.len(),
                            tags.name
                        ),
                    ))
                }
            }
        }
    };
    inv.security_group_id = id;
    Ok(Progress::Advanced)
}

/// CreateNodegroup in the private subnets (an existing group of this name is adopted).
pub async fn node_group(
    eks: &Client,
    tags: &Tags,
    spec: &EksSpec,
    inv: &mut EksInventory,
) -> Result<Progress, AwsError> {
    let name = node_group_name(&tags.name);
    let made = eks
        .create_nodegroup()
        .cluster_name(&tags.name)
        .nodegroup_name(&name)
        .node_role(&inv.worker_role.role_arn)
        .set_subnets(Some(inv.private_subnet_ids()))
        .instance_types(&spec.instance_type)
        .version(&spec.kubernetes_version)
        .scaling_config(
            NodegroupScalingConfig::builder()
                .desired_size(spec.initial_nodes)
                .min_size(spec.min_nodes)
                .max_size(spec.max_nodes)
                .build(),
        )
        .set_tags(Some(eks_tags(tags)))
        .send()
        .await
        .map_err(aws_err("eks:CreateNodegroup"));
    match made {
        Ok(_) => {}
        Err(e) if e.is(&["ResourceInUseException"]) => {}
        Err(e) => return Err(e),
    }
    inv.node_group_names = vec![name];
    Ok(Progress::Advanced)
}

/// Whether every node group is active (a failed one is a permanent error with EKS's health
/// issues).
pub async fn node_groups_active(
    eks: &Client,
    tags: &Tags,
    inv: &EksInventory,
) -> Result<bool, AwsError> {
    for name in &inv.node_group_names {
        let group = eks
            .describe_nodegroup()
            .cluster_name(&tags.name)
            .nodegroup_name(name)
            .send()
            .await
            .map_err(aws_err("eks:DescribeNodegroup"))?
            .nodegroup
            .ok_or_else(|| {
                AwsError::unexpected("eks:DescribeNodegroup", "no node group in the answer")
            })?;
        match group.status() {
            Some(NodegroupStatus::Active) => {}
            // Terminal for a build: failed, degraded (EKS's health issues say why), or being
            // deleted behind our back. Creating and updating are worth waiting for.
            Some(
                NodegroupStatus::CreateFailed
                | NodegroupStatus::Degraded
                | NodegroupStatus::Deleting
                | NodegroupStatus::DeleteFailed,
            ) => {
                let issues: Vec<String> = group
                    .health()
                    .map(|h| {
                        h.issues()
                            .iter()
                            .filter_map(|i| i.message().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                return Err(AwsError::conflict(
                    "eks:DescribeNodegroup",
                    format!(
                        "node group {name} is {}: {}",
                        group.status().map(|s| s.as_str()).unwrap_or_default(),
                        issues.join("; ")
                    ),
                ));
            }
            _ => return Ok(false),
        }
    }
    Ok(true)
}

/// The EBS CSI add-on with its service-account role (already there counts as made).
pub async fn storage_addon(
    eks: &Client,
    tags: &Tags,
    inv: &mut EksInventory,
) -> Result<Progress, AwsError> {
    let made = eks
        .create_addon()
        .cluster_name(&tags.name)
        .addon_name(STORAGE_ADDON)
        .service_account_role_arn(&inv.storage_management_role.role_arn)
        .set_tags(Some(eks_tags(tags)))
        .send()
        .await
        .map_err(aws_err("eks:CreateAddon"));
    match made {
        Ok(_) => {}
        Err(e) if e.is(&["ResourceInUseException"]) => {}
        Err(e) => return Err(e),
    }
    inv.cluster_addon = true;
    Ok(Progress::Advanced)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::extract::{Path, State};
    use axum::http::StatusCode;
    use axum::Json;
    use serde_json::{json, Value};

    use super::*;
    use crate::aws::AwsSessions;
    use crate::config::AwsConfig;
    use crate::threeport::models::{AwsAccount, SecretString};

    /// moto has no EKS add-on API, so this path runs against a fake EKS endpoint on loopback
    /// that records what it was asked and answers as EKS does (first a new add-on, then
    /// "already exists").
    #[tokio::test]
    async fn the_storage_addon_is_created_with_its_role_and_an_existing_one_is_adopted() {
        type Seen = Arc<Mutex<Vec<(String, Value)>>>;
        let seen: Seen = Arc::default();
        async fn create_addon(
            State(seen): State<Seen>,
            Path(cluster): Path<String>,
            Json(body): Json<Value>,
        ) -> (StatusCode, [(&'static str, &'static str); 1], Json<Value>) {
            let first = {
                let mut seen = seen.lock().unwrap();
                seen.push((cluster.clone(), body.clone()));
                seen.len() == 1
            };
            if first {
                let addon = json!({"addon": {"addonName": body["addonName"], "clusterName": cluster, "status": "CREATING"}});
                (
                    StatusCode::OK,
                    [("content-type", "application/json")],
                    Json(addon),
                )
            } else {
                (
                    StatusCode::CONFLICT,
                    [("x-amzn-errortype", "ResourceInUseException")],
                    Json(json!({"message": "Addon already exists."})),
                )
            }
        }
        let app = axum::Router::new()
            .route(
                "/clusters/{cluster}/addons",
                axum::routing::post(create_addon),
            )
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });

        let sessions = AwsSessions::new(
            AwsConfig {
                endpoint_url: Some(url),
                ..Default::default()
            },
            None,
        );
        let account = AwsAccount {
            account_id: Some("123456789012".into()),
            access_key_id: Some(SecretString("AKIDEXAMPLE".into())),
            secret_access_key: Some(SecretString("secret".into())),
            ..Default::default()
        };
        let session = sessions.for_account(&account, "us-east-1").await.unwrap();
        let tags = Tags { name: "c1".into() };
        let mut inv = EksInventory::default();
        inv.storage_management_role.role_arn = "arn:aws:iam::123456789012:role/csi-role-c1".into();

        assert_eq!(
            storage_addon(&session.eks(), &tags, &mut inv)
                .await
                .unwrap(),
            Progress::Advanced
        );
        assert!(inv.cluster_addon);
        inv.cluster_addon = false;
        storage_addon(&session.eks(), &tags, &mut inv)
            .await
            .unwrap();
        assert!(inv.cluster_addon, "an existing add-on is adopted");

        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        let (cluster, body) = &seen[0];
        assert_eq!(cluster, "c1");
        assert_eq!(body["addonName"], STORAGE_ADDON);
        assert_eq!(
            body["serviceAccountRoleArn"],
            "arn:aws:iam::123456789012:role/csi-role-c1"
        );
        assert_eq!(
            body["tags"],
            json!({"Name": "c1", "ProvisionedBy": "threeport"})
        );
    }
}
