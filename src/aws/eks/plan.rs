//! What to do next for an EKS cluster, decided from its inventory alone (no AWS calls).
//!
//! Provisioning builds what nukleros aws-builder v0.4.7 builds, in its order:
//!
//! | step | made | recorded in |
//! |---|---|---|
//! | zones | the first `ZoneCount` zones (2 when 0, at most 3), /22 subnet CIDRs | `availabilityZones` |
//! | VPC | `10.0.0.0/16`, DNS support and hostnames on | `vpcId` |
//! | internet gateway | attached to the VPC | `internetGatewayId` |
//! | public, private subnets | one of each per zone | `…Subnets[].subnetId` |
//! | elastic IPs, NAT gateways | one per zone, in the public subnets; waited for | `elasticIpIds`, `natGatewayId` |
//! | route tables | one public (to the gateway), one per private subnet (to its NAT) | `…RouteTableId(s)` |
//! | cluster, worker roles | `cluster-role-<n>`, `worker-role-<n>` with AWS's managed policies | `clusterRole`, `workerRole` |
//! | cluster | in the private subnets; waited for until active | `cluster` |
//! | security group, node group | EKS's group; `<n>-private-node-group`; waited for | `securityGroupId`, `nodeGroupNames` |
//! | OIDC provider, service-account roles | DNS, DNS01, secrets, autoscaler, EBS CSI | `oidcProviderArn`, `…Role`, `policyArns` |
//! | storage add-on | `aws-ebs-csi-driver` | `clusterAddon` |
//!
//! Every step is idempotent on its own (it finds what an interrupted earlier run made by
//! name or tags before making anything), so the plan only needs the first empty field.
//! Deletion goes the other way: [`next_delete_step`].

use super::inventory::EksInventory;

/// The service-account roles made after the OIDC provider, in aws-builder's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceRole {
    /// external-dns (`DNSUpdates-<n>`, `dns-mgmt-role-<n>`).
    DnsManagement,
    /// cert-manager DNS01 (`DNS01Challenge-<n>`, `dns-chlg-role-<n>`).
    Dns01Challenge,
    /// external-secrets (`SecretsManager-<n>`, `secrets-manager-role-<n>`).
    SecretsManager,
    /// cluster-autoscaler (`ClusterAutoscaler-<n>`, `ca-role-<n>`).
    ClusterAutoscaling,
    /// The EBS CSI driver (AWS's managed policy, `csi-role-<n>`).
    StorageManagement,
}

impl ServiceRole {
    /// In creation order.
    pub const ALL: [ServiceRole; 5] = [
        ServiceRole::DnsManagement,
        ServiceRole::Dns01Challenge,
        ServiceRole::SecretsManager,
        ServiceRole::ClusterAutoscaling,
        ServiceRole::StorageManagement,
    ];
}

/// The next step of provisioning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateStep {
    /// Pick the zones and plan their subnets.
    Zones,
    /// The VPC.
    Vpc,
    /// The internet gateway, attached.
    InternetGateway,
    /// The public subnets.
    PublicSubnets,
    /// The private subnets.
    PrivateSubnets,
    /// The elastic IPs.
    ElasticIps,
    /// The NAT gateways, made and then waited for.
    NatGateways,
    /// The public route table.
    PublicRouteTable,
    /// The private route tables.
    PrivateRouteTables,
    /// `cluster-role-<n>`.
    ClusterRole,
    /// `worker-role-<n>`.
    WorkerRole,
    /// CreateCluster.
    Cluster,
    /// Wait for the cluster to be active, then record its OIDC issuer.
    ClusterActive,
    /// The security group EKS made for the cluster.
    SecurityGroup,
    /// CreateNodegroup.
    NodeGroup,
    /// Wait for the node group, then make the OIDC provider.
    OidcProvider,
    /// A service-account role (and its policy).
    ServiceRole(ServiceRole),
    /// The EBS CSI add-on.
    StorageAddon,
    /// Everything is built.
    Complete,
}

/// The first step whose resource is not recorded. `storage_addon`: whether the add-on is
/// part of provisioning (config `aws.eks_storage_addon`).
pub fn next_create_step(inv: &EksInventory, storage_addon: bool) -> CreateStep {
    let zones = &inv.availability_zones;
    let missing = |pick: fn(&super::inventory::AvailabilityZone) -> bool| zones.iter().any(pick);
    if zones.is_empty() {
        CreateStep::Zones
    } else if inv.vpc_id.is_empty() {
        CreateStep::Vpc
    } else if inv.internet_gateway_id.is_empty() {
        CreateStep::InternetGateway
    } else if missing(|z| z.public_subnets.iter().any(|s| s.subnet_id.is_empty())) {
        CreateStep::PublicSubnets
    } else if missing(|z| z.private_subnets.iter().any(|s| s.subnet_id.is_empty())) {
        CreateStep::PrivateSubnets
    } else if inv.elastic_ip_ids.len() < zones.len() {
        CreateStep::ElasticIps
    } else if missing(|z| z.nat_gateway_id.is_empty()) {
        CreateStep::NatGateways
    } else if inv.public_route_table_id.is_empty() {
        CreateStep::PublicRouteTable
    } else if inv.private_route_table_ids.len() < zones.len() {
        CreateStep::PrivateRouteTables
    } else if !inv.cluster_role.is_made() {
        CreateStep::ClusterRole
    } else if !inv.worker_role.is_made() {
        CreateStep::WorkerRole
    } else if inv.cluster.cluster_arn.is_empty() {
        CreateStep::Cluster
    } else if inv.cluster.oidc_provider_url.is_empty() {
        CreateStep::ClusterActive
    } else if inv.security_group_id.is_empty() {
        CreateStep::SecurityGroup
    } else if inv.node_group_names.is_empty() {
        CreateStep::NodeGroup
    } else if inv.oidc_provider_arn.is_empty() {
        CreateStep::OidcProvider
    } else if let Some(role) = ServiceRole::ALL
        .into_iter()
        .find(|r| !role_of(inv, *r).is_made())
    {
        CreateStep::ServiceRole(role)
    } else if storage_addon && !inv.cluster_addon {
        CreateStep::StorageAddon
    } else {
        CreateStep::Complete
    }
}

/// The inventory entry of a service-account role.
pub fn role_of(inv: &EksInventory, role: ServiceRole) -> &super::inventory::RoleInventory {
    match role {
        ServiceRole::DnsManagement => &inv.dns_management_role,
        ServiceRole::Dns01Challenge => &inv.dns01_challenge_role,
        ServiceRole::SecretsManager => &inv.secrets_manager_role,
        ServiceRole::ClusterAutoscaling => &inv.cluster_autoscaling_role,
        ServiceRole::StorageManagement => &inv.storage_management_role,
    }
}

/// The next step of a deletion: the reverse of provisioning. Each one removes what its field
/// records and clears the field (AWS's "not found" counts as removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteStep {
    /// The IAM OIDC provider.
    OidcProvider,
    /// The node groups (requested, then waited for).
    NodeGroups,
    /// The cluster (requested, then waited for).
    Cluster,
    /// Every role: policies detached, then the role.
    Roles,
    /// Our customer-managed policies.
    Policies,
    /// The NAT gateways (requested, then waited for).
    NatGateways,
    /// The internet gateway: detached, then deleted.
    InternetGateway,
    /// The elastic IPs.
    ElasticIps,
    /// Every subnet.
    Subnets,
    /// Every route table.
    RouteTables,
    /// The VPC.
    Vpc,
    /// Nothing is left.
    Complete,
}

/// The first step that still has something recorded to remove.
pub fn next_delete_step(inv: &EksInventory) -> DeleteStep {
    let roles = [
        &inv.cluster_role,
        &inv.worker_role,
        &inv.dns_management_role,
        &inv.dns01_challenge_role,
        &inv.secrets_manager_role,
        &inv.cluster_autoscaling_role,
        &inv.storage_management_role,
    ];
    if !inv.oidc_provider_arn.is_empty() {
        DeleteStep::OidcProvider
    } else if !inv.node_group_names.is_empty() {
        DeleteStep::NodeGroups
    } else if !inv.cluster.cluster_name.is_empty() || !inv.cluster.cluster_arn.is_empty() {
        DeleteStep::Cluster
    } else if roles.iter().any(|r| !r.role_name.is_empty()) {
        DeleteStep::Roles
    } else if !inv.policy_arns.is_empty() {
        DeleteStep::Policies
    } else if inv
        .availability_zones
        .iter()
        .any(|z| !z.nat_gateway_id.is_empty())
    {
        DeleteStep::NatGateways
    } else if !inv.internet_gateway_id.is_empty() {
        DeleteStep::InternetGateway
    } else if !inv.elastic_ip_ids.is_empty() {
        DeleteStep::ElasticIps
    } else if !inv.public_subnet_ids().is_empty() || !inv.private_subnet_ids().is_empty() {
        DeleteStep::Subnets
    } else if !inv.public_route_table_id.is_empty() || !inv.private_route_table_ids.is_empty() {
        DeleteStep::RouteTables
    } else if !inv.vpc_id.is_empty() {
        DeleteStep::Vpc
    } else {
        DeleteStep::Complete
    }
}

/// `desiredAzCount` as aws-builder takes it: 0 means 2, and there are at most 3.
pub fn zone_count(requested: i64) -> usize {
    match requested {
        i64::MIN..=0 => 2,
        n => (n as usize).min(3),
    }
}

/// The public and private subnet CIDRs of the zone at `index` (aws-builder's fixed /22
/// pairs in `10.0.0.0/16`: `10.0.0.0/22` and `10.0.4.0/22` for the first zone, and so on).
pub fn subnet_cidrs(index: usize) -> (String, String) {
    let public = index * 8;
    (
        format!("10.0.{public}.0/22"),
        format!("10.0.{}.0/22", public + 4),
    )
}

#[cfg(test)]
mod tests {
    use super::super::inventory::{AvailabilityZone, Subnet};
    use super::*;

    fn subnet(id: &str, cidr: &str) -> Subnet {
        Subnet {
            subnet_id: id.into(),
            subnet_cidr: cidr.into(),
        }
    }

    #[test]
    fn zones_and_cidrs_follow_aws_builder() {
        assert_eq!(zone_count(0), 2);
        assert_eq!(zone_count(-1), 2);
        assert_eq!(zone_count(1), 1);
        assert_eq!(zone_count(3), 3);
        assert_eq!(zone_count(9), 3);
        assert_eq!(
            subnet_cidrs(0),
            ("10.0.0.0/22".into(), "10.0.4.0/22".into())
        );
        assert_eq!(
            subnet_cidrs(1),
            ("10.0.8.0/22".into(), "10.0.12.0/22".into())
        );
        assert_eq!(
            subnet_cidrs(2),
            ("10.0.16.0/22".into(), "10.0.20.0/22".into())
        );
    }

    /// Walks the whole plan by filling each step's field as its executor would: every step
    /// comes once, in aws-builder's order, and the plan ends in Complete.
    #[test]
    fn provisioning_visits_every_step_once_in_order() {
        let mut inv = EksInventory::default();
        let mut seen = Vec::new();
        for _ in 0..40 {
            let step = next_create_step(&inv, true);
            seen.push(step);
            match step {
                CreateStep::Zones => {
                    inv.availability_zones = vec![
                        AvailabilityZone {
                            zone: "a".into(),
                            public_subnets: vec![subnet("", "10.0.0.0/22")],
                            private_subnets: vec![subnet("", "10.0.4.0/22")],
                            nat_gateway_id: String::new(),
                        };
                        2
                    ];
                }
                CreateStep::Vpc => inv.vpc_id = "vpc".into(),
                CreateStep::InternetGateway => inv.internet_gateway_id = "igw".into(),
                CreateStep::PublicSubnets => inv
                    .availability_zones
                    .iter_mut()
                    .for_each(|z| z.public_subnets[0].subnet_id = "pub".into()),
                CreateStep::PrivateSubnets => inv
                    .availability_zones
                    .iter_mut()
                    .for_each(|z| z.private_subnets[0].subnet_id = "priv".into()),
                CreateStep::ElasticIps => inv.elastic_ip_ids = vec!["e1".into(), "e2".into()],
                CreateStep::NatGateways => inv
                    .availability_zones
                    .iter_mut()
                    .for_each(|z| z.nat_gateway_id = "nat".into()),
                CreateStep::PublicRouteTable => inv.public_route_table_id = "rt".into(),
                CreateStep::PrivateRouteTables => {
                    inv.private_route_table_ids = vec!["r1".into(), "r2".into()];
                }
                CreateStep::ClusterRole => inv.cluster_role.role_arn = "arn".into(),
                CreateStep::WorkerRole => inv.worker_role.role_arn = "arn".into(),
                CreateStep::Cluster => inv.cluster.cluster_arn = "arn".into(),
                CreateStep::ClusterActive => inv.cluster.oidc_provider_url = "https://o".into(),
                CreateStep::SecurityGroup => inv.security_group_id = "sg".into(),
                CreateStep::NodeGroup => inv.node_group_names = vec!["ng".into()],
                CreateStep::OidcProvider => inv.oidc_provider_arn = "arn".into(),
                CreateStep::ServiceRole(r) => match r {
                    ServiceRole::DnsManagement => inv.dns_management_role.role_arn = "a".into(),
                    ServiceRole::Dns01Challenge => inv.dns01_challenge_role.role_arn = "a".into(),
                    ServiceRole::SecretsManager => inv.secrets_manager_role.role_arn = "a".into(),
                    ServiceRole::ClusterAutoscaling => {
                        inv.cluster_autoscaling_role.role_arn = "a".into();
                    }
                    ServiceRole::StorageManagement => {
                        inv.storage_management_role.role_arn = "a".into();
                    }
                },
                CreateStep::StorageAddon => inv.cluster_addon = true,
                CreateStep::Complete => break,
            }
        }
        assert_eq!(seen.len(), 23, "{seen:?}");
        assert_eq!(seen.last(), Some(&CreateStep::Complete));
        let mut unique = seen.clone();
        unique.dedup();
        assert_eq!(unique, seen, "a step repeated");
        // Without the add-on, the cluster is complete one step earlier.
        inv.cluster_addon = false;
        assert_eq!(next_create_step(&inv, false), CreateStep::Complete);
        assert_eq!(next_create_step(&inv, true), CreateStep::StorageAddon);
    }

    #[test]
    fn deletion_goes_in_reverse_and_ends_when_nothing_is_recorded() {
        let mut inv = EksInventory {
            vpc_id: "vpc".into(),
            oidc_provider_arn: "arn".into(),
            node_group_names: vec!["ng".into()],
            policy_arns: vec!["p".into()],
            ..Default::default()
        };
        inv.cluster.cluster_name = "c".into();
        inv.worker_role.role_name = "worker-role-c".into();
        assert_eq!(next_delete_step(&inv), DeleteStep::OidcProvider);
        inv.oidc_provider_arn.clear();
        assert_eq!(next_delete_step(&inv), DeleteStep::NodeGroups);
        inv.node_group_names.clear();
        assert_eq!(next_delete_step(&inv), DeleteStep::Cluster);
        inv.cluster = Default::default();
        assert_eq!(next_delete_step(&inv), DeleteStep::Roles);
        inv.worker_role = Default::default();
        assert_eq!(next_delete_step(&inv), DeleteStep::Policies);
        inv.policy_arns.clear();
        assert_eq!(next_delete_step(&inv), DeleteStep::Vpc);
        inv.vpc_id.clear();
        assert_eq!(next_delete_step(&inv), DeleteStep::Complete);
        assert_eq!(
            next_delete_step(&EksInventory::default()),
            DeleteStep::Complete
        );
    }
}
