//! The EKS resource inventory: what has been built for a cluster, stored as the instance's
//! `ResourceInventory` JSON in the format of nukleros aws-builder v0.4.7's `EksInventory`
//! (lower-camel keys), which Threeport's other controllers read (e.g.
//! `dnsManagementRole.roleArn`, `secretsManagerRole.roleArn`, `vpcId`, `securityGroupId`).
//!
//! The inventory is also the provisioning's state: a field is filled right after its
//! resource exists, and the next step is the first one whose field is empty
//! ([`super::plan`]). Go writes `null` for lists it never filled; both read as empty here.
//! Keys this manager does not know are kept, so a newer writer's fields survive our PATCH.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// `EksInventory`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EksInventory {
    /// The region everything is in.
    #[serde(deserialize_with = "nullable")]
    pub region: String,
    /// One entry per availability zone, with its subnets and NAT gateway.
    #[serde(deserialize_with = "nullable")]
    pub availability_zones: Vec<AvailabilityZone>,
    /// The cluster's VPC.
    #[serde(deserialize_with = "nullable")]
    pub vpc_id: String,
    /// The VPC's internet gateway.
    #[serde(deserialize_with = "nullable")]
    pub internet_gateway_id: String,
    /// One elastic IP per zone, for its NAT gateway (allocation IDs).
    #[serde(deserialize_with = "nullable")]
    pub elastic_ip_ids: Vec<String>,
    /// The route table of every public subnet.
    #[serde(deserialize_with = "nullable")]
    pub public_route_table_id: String,
    /// One route table per private subnet.
    #[serde(deserialize_with = "nullable")]
    pub private_route_table_ids: Vec<String>,
    /// `cluster-role-<name>`.
    #[serde(deserialize_with = "nullable")]
    pub cluster_role: RoleInventory,
    /// `worker-role-<name>`.
    #[serde(deserialize_with = "nullable")]
    pub worker_role: RoleInventory,
    /// `dns-mgmt-role-<name>` (external-dns).
    #[serde(deserialize_with = "nullable")]
    pub dns_management_role: RoleInventory,
    /// `dns-chlg-role-<name>` (cert-manager).
    #[serde(rename = "dns01ChallengeRole", deserialize_with = "nullable")]
    pub dns01_challenge_role: RoleInventory,
    /// `secrets-manager-role-<name>` (external-secrets).
    #[serde(deserialize_with = "nullable")]
    pub secrets_manager_role: RoleInventory,
    /// `ca-role-<name>` (cluster-autoscaler).
    #[serde(deserialize_with = "nullable")]
    pub cluster_autoscaling_role: RoleInventory,
    /// `csi-role-<name>` (the EBS CSI driver add-on).
    #[serde(deserialize_with = "nullable")]
    pub storage_management_role: RoleInventory,
    /// The customer-managed policies made for the service-account roles.
    #[serde(deserialize_with = "nullable")]
    pub policy_arns: Vec<String>,
    /// The EKS cluster.
    #[serde(deserialize_with = "nullable")]
    pub cluster: ClusterInventory,
    /// Whether the EBS CSI add-on was created: the last step of provisioning.
    #[serde(deserialize_with = "nullable")]
    pub cluster_addon: bool,
    /// The managed node groups (one: `<name>-private-node-group`).
    #[serde(deserialize_with = "nullable")]
    pub node_group_names: Vec<String>,
    /// The IAM OIDC provider of the cluster's issuer.
    #[serde(deserialize_with = "nullable")]
    pub oidc_provider_arn: String,
    /// The security group EKS made for the cluster.
    #[serde(deserialize_with = "nullable")]
    pub security_group_id: String,
    /// Keys of a newer writer, kept as they are.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// One availability zone of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AvailabilityZone {
    /// e.g. `us-east-1a`.
    #[serde(deserialize_with = "nullable")]
    pub zone: String,
    /// The zone's public subnet (one).
    #[serde(deserialize_with = "nullable")]
    pub public_subnets: Vec<Subnet>,
    /// The zone's private subnet (one).
    #[serde(deserialize_with = "nullable")]
    pub private_subnets: Vec<Subnet>,
    /// The NAT gateway in the zone's public subnet.
    #[serde(deserialize_with = "nullable")]
    pub nat_gateway_id: String,
}

/// A subnet: its CIDR is planned first, its ID filled once it exists.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Subnet {
    /// `subnet-...`, empty until made.
    #[serde(deserialize_with = "nullable")]
    pub subnet_id: String,
    /// e.g. `10.0.0.0/22`.
    #[serde(deserialize_with = "nullable")]
    pub subnet_cidr: String,
}

/// An IAM role and the policies attached to it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RoleInventory {
    /// The role's name.
    #[serde(deserialize_with = "nullable")]
    pub role_name: String,
    /// The role's ARN; empty until the role exists with its policies attached.
    #[serde(deserialize_with = "nullable")]
    pub role_arn: String,
    /// Attached policies (AWS-managed or ours).
    #[serde(deserialize_with = "nullable")]
    pub role_policy_arns: Vec<String>,
}

impl RoleInventory {
    /// Whether the role exists with its policies.
    pub fn is_made(&self) -> bool {
        !self.role_arn.is_empty()
    }
}

/// The EKS cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterInventory {
    /// The cluster's name (the instance's Name).
    #[serde(deserialize_with = "nullable")]
    pub cluster_name: String,
    /// Set once CreateCluster succeeded.
    #[serde(deserialize_with = "nullable")]
    pub cluster_arn: String,
    /// The cluster's OIDC issuer; set once the cluster is active.
    #[serde(deserialize_with = "nullable")]
    pub oidc_provider_url: String,
}

impl crate::aws::Inventory for EksInventory {}

impl EksInventory {
    /// Every private subnet made, in zone order (the cluster's and node group's subnets).
    pub fn private_subnet_ids(&self) -> Vec<String> {
        subnet_ids(&self.availability_zones, |z| &z.private_subnets)
    }

    /// Every public subnet made, in zone order.
    pub fn public_subnet_ids(&self) -> Vec<String> {
        subnet_ids(&self.availability_zones, |z| &z.public_subnets)
    }
}

fn subnet_ids(
    zones: &[AvailabilityZone],
    pick: fn(&AvailabilityZone) -> &Vec<Subnet>,
) -> Vec<String> {
    zones
        .iter()
        .flat_map(|z| pick(z).iter())
        .filter(|s| !s.subnet_id.is_empty())
        .map(|s| s.subnet_id.clone())
        .collect()
}

/// `null` reads as the type's default (Go's nil slices and nil structs).
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::Inventory;
    use serde_json::json;

    #[test]
    fn reads_go_nulls_and_writes_aws_builder_keys() {
        let go = json!({
            "region": "us-east-1", "availabilityZones": null, "vpcId": "vpc-1",
            "internetGatewayId": "", "elasticIpIds": null, "publicRouteTableId": "",
            "privateRouteTableIds": null,
            "clusterRole": {"roleName": "", "roleArn": "", "rolePolicyArns": null},
            "workerRole": null, "dnsManagementRole": null,
            "dns01ChallengeRole": {"roleName": "dns-chlg-role-c", "roleArn": "arn:x", "rolePolicyArns": ["arn:p"]},
            "secretsManagerRole": null, "clusterAutoscalingRole": null, "storageManagementRole": null,
            "policyArns": null, "cluster": {"clusterName": "c", "clusterArn": "", "oidcProviderUrl": ""},
            "clusterAddon": false, "nodeGroupNames": null, "oidcProviderArn": "", "securityGroupId": "",
            "futureField": {"kept": true}
        });
        let inv = EksInventory::from_value(Some(&go)).unwrap();
        assert_eq!(inv.vpc_id, "vpc-1");
        assert!(inv.availability_zones.is_empty());
        assert_eq!(inv.dns01_challenge_role.role_arn, "arn:x");
        let back = inv.to_value();
        for key in [
            "region",
            "availabilityZones",
            "vpcId",
            "internetGatewayId",
            "elasticIpIds",
            "publicRouteTableId",
            "privateRouteTableIds",
            "clusterRole",
            "workerRole",
            "dnsManagementRole",
            "dns01ChallengeRole",
            "secretsManagerRole",
            "clusterAutoscalingRole",
            "storageManagementRole",
            "policyArns",
            "cluster",
            "clusterAddon",
            "nodeGroupNames",
            "oidcProviderArn",
            "securityGroupId",
        ] {
            assert!(back.get(key).is_some(), "{key} missing from {back}");
        }
        assert_eq!(back["dns01ChallengeRole"]["roleArn"], "arn:x");
        assert_eq!(back["futureField"], json!({"kept": true}));
        assert_eq!(
            EksInventory::from_value(None).unwrap(),
            EksInventory::default()
        );
        assert_eq!(
            EksInventory::from_value(Some(&json!({}))).unwrap(),
            EksInventory::default()
        );
    }
}
