//! Tearing an EKS cluster down, in the reverse order of provisioning. Each step removes what
//! its inventory field records, treats AWS's "not found" as removed, and clears the field;
//! waits (node groups, cluster, NAT gateways) are one look and a requeue. Unlike aws-builder,
//! a "not found" never ends a step early, so nothing after it is left behind.

use aws_sdk_ec2::types::NatGatewayState;

use super::inventory::EksInventory;
use super::{Progress, Tags};
use crate::aws::error::{aws_err, tolerate, AwsError};
use crate::aws::iam::delete_role;
use crate::aws::session::AwsSession;

/// The IAM OIDC provider.
pub async fn oidc_provider(s: &AwsSession, inv: &mut EksInventory) -> Result<Progress, AwsError> {
    let r = s
        .iam()
        .delete_open_id_connect_provider()
        .open_id_connect_provider_arn(&inv.oidc_provider_arn)
        .send()
        .await
        .map_err(aws_err("iam:DeleteOpenIDConnectProvider"));
    tolerate(r, &["NoSuchEntity"])?;
    inv.oidc_provider_arn.clear();
    Ok(Progress::Advanced)
}

/// The node groups: deletion requested, then waited for.
pub async fn node_groups(
    s: &AwsSession,
    tags: &Tags,
    inv: &mut EksInventory,
) -> Result<Progress, AwsError> {
    let eks = s.eks();
    let cluster = cluster_name(inv, tags);
    let mut remaining = 0;
    for name in &inv.node_group_names {
        let described = eks
            .describe_nodegroup()
            .cluster_name(&cluster)
            .nodegroup_name(name)
            .send()
            .await
            .map_err(aws_err("eks:DescribeNodegroup"));
        let status = match described {
            Ok(out) => out.nodegroup.and_then(|g| g.status),
            Err(e) if e.is(&["ResourceNotFoundException"]) => continue,
            Err(e) => return Err(e),
        };
        remaining += 1;
        if status != Some(aws_sdk_eks::types::NodegroupStatus::Deleting) {
            let r = eks
                .delete_nodegroup()
                .cluster_name(&cluster)
                .nodegroup_name(name)
                .send()
                .await
                .map_err(aws_err("eks:DeleteNodegroup"));
            tolerate(r, &["ResourceNotFoundException", "ResourceInUseException"])?;
        }
    }
    if remaining > 0 {
        return Ok(Progress::Waiting("the node groups to be deleted"));
    }
    inv.node_group_names.clear();
    Ok(Progress::Advanced)
}

fn cluster_name(inv: &EksInventory, tags: &Tags) -> String {
    if inv.cluster.cluster_name.is_empty() {
        tags.name.clone()
    } else {
        inv.cluster.cluster_name.clone()
    }
}

/// The cluster (and with it its add-on and the security group EKS made): deletion requested,
/// then waited for.
pub async fn cluster(
    s: &AwsSession,
    tags: &Tags,
    inv: &mut EksInventory,
) -> Result<Progress, AwsError> {
    let eks = s.eks();
    let name = cluster_name(inv, tags);
    let described = eks
        .describe_cluster()
        .name(&name)
        .send()
        .await
        .map_err(aws_err("eks:DescribeCluster"));
    match described {
        Ok(out) => {
            let deleting = out.cluster.and_then(|c| c.status)
                == Some(aws_sdk_eks::types::ClusterStatus::Deleting);
            if !deleting {
                let r = eks
                    .delete_cluster()
                    .name(&name)
                    .send()
                    .await
                    .map_err(aws_err("eks:DeleteCluster"));
                tolerate(r, &["ResourceNotFoundException"])?;
            }
            Ok(Progress::Waiting("the EKS cluster to be deleted"))
        }
        Err(e) if e.is(&["ResourceNotFoundException"]) => {
            inv.cluster = Default::default();
            inv.cluster_addon = false;
            inv.security_group_id.clear();
            Ok(Progress::Advanced)
        }
        Err(e) => Err(e),
    }
}

/// Every role: its policies detached, then the role.
pub async fn roles(s: &AwsSession, inv: &mut EksInventory) -> Result<Progress, AwsError> {
    let iam = s.iam();
    for role in [
        &mut inv.cluster_role,
        &mut inv.worker_role,
        &mut inv.dns_management_role,
        &mut inv.dns01_challenge_role,
        &mut inv.secrets_manager_role,
        &mut inv.cluster_autoscaling_role,
        &mut inv.storage_management_role,
    ] {
        if role.role_name.is_empty() {
            continue;
        }
        delete_role(&iam, &role.role_name).await?;
        *role = Default::default();
    }
    Ok(Progress::Advanced)
}

/// Our customer-managed policies.
pub async fn policies(s: &AwsSession, inv: &mut EksInventory) -> Result<Progress, AwsError> {
    let iam = s.iam();
    while let Some(arn) = inv.policy_arns.first().cloned() {
        let r = iam
            .delete_policy()
            .policy_arn(&arn)
            .send()
            .await
            .map_err(aws_err("iam:DeletePolicy"));
        tolerate(r, &["NoSuchEntity"])?;
        inv.policy_arns.remove(0);
    }
    Ok(Progress::Advanced)
}

/// The NAT gateways: deletion requested, then waited for.
pub async fn nat_gateways(s: &AwsSession, inv: &mut EksInventory) -> Result<Progress, AwsError> {
    let ec2 = s.ec2();
    let mut remaining = 0;
    for zone in &mut inv.availability_zones {
        if zone.nat_gateway_id.is_empty() {
            continue;
        }
        let described = ec2
            .describe_nat_gateways()
            .nat_gateway_ids(&zone.nat_gateway_id)
            .send()
            .await
            .map_err(aws_err("ec2:DescribeNatGateways"));
        let state = match described {
            Ok(out) => out.nat_gateways().first().and_then(|n| n.state().cloned()),
            Err(e) if e.is(&["NatGatewayNotFound", "InvalidNatGatewayID.NotFound"]) => None,
            Err(e) => return Err(e),
        };
        match state {
            None | Some(NatGatewayState::Deleted | NatGatewayState::Failed) => {
                zone.nat_gateway_id.clear();
            }
            Some(NatGatewayState::Deleting) => remaining += 1,
            Some(_) => {
                let r = ec2
                    .delete_nat_gateway()
                    .nat_gateway_id(&zone.nat_gateway_id)
                    .send()
                    .await
                    .map_err(aws_err("ec2:DeleteNatGateway"));
                tolerate(r, &["NatGatewayNotFound", "InvalidNatGatewayID.NotFound"])?;
                remaining += 1;
            }
        }
    }
    if remaining > 0 {
        return Ok(Progress::Waiting("the NAT gateways to be deleted"));
    }
    Ok(Progress::Advanced)
}

/// The internet gateway: detached, then deleted.
pub async fn internet_gateway(
    s: &AwsSession,
    inv: &mut EksInventory,
) -> Result<Progress, AwsError> {
    let ec2 = s.ec2();
    if !inv.vpc_id.is_empty() {
        let r = ec2
            .detach_internet_gateway()
            .internet_gateway_id(&inv.internet_gateway_id)
            .vpc_id(&inv.vpc_id)
            .send()
            .await
            .map_err(aws_err("ec2:DetachInternetGateway"));
        tolerate(
            r,
            &[
                "Gateway.NotAttached",
                "InvalidInternetGatewayID.NotFound",
                "InvalidVpcID.NotFound",
            ],
        )?;
    }
    let r = ec2
        .delete_internet_gateway()
        .internet_gateway_id(&inv.internet_gateway_id)
        .send()
        .await
        .map_err(aws_err("ec2:DeleteInternetGateway"));
    tolerate(r, &["InvalidInternetGatewayID.NotFound"])?;
    inv.internet_gateway_id.clear();
    Ok(Progress::Advanced)
}

/// The elastic IPs.
pub async fn elastic_ips(s: &AwsSession, inv: &mut EksInventory) -> Result<Progress, AwsError> {
    let ec2 = s.ec2();
    while let Some(id) = inv.elastic_ip_ids.first().cloned() {
        let r = ec2
            .release_address()
            .allocation_id(&id)
            .send()
            .await
            .map_err(aws_err("ec2:ReleaseAddress"));
        tolerate(r, &["InvalidAllocationID.NotFound"])?;
        inv.elastic_ip_ids.remove(0);
    }
    Ok(Progress::Advanced)
}

/// Every subnet (their planned CIDRs stay, as aws-builder leaves them).
pub async fn subnets(s: &AwsSession, inv: &mut EksInventory) -> Result<Progress, AwsError> {
    let ec2 = s.ec2();
    for zone in &mut inv.availability_zones {
        for subnet in zone
            .public_subnets
            .iter_mut()
            .chain(zone.private_subnets.iter_mut())
            .filter(|s| !s.subnet_id.is_empty())
        {
            let r = ec2
                .delete_subnet()
                .subnet_id(&subnet.subnet_id)
                .send()
                .await
                .map_err(aws_err("ec2:DeleteSubnet"));
            tolerate(r, &["InvalidSubnetID.NotFound"])?;
            subnet.subnet_id.clear();
        }
    }
    Ok(Progress::Advanced)
}

/// Every route table (its subnet associations first).
pub async fn route_tables(s: &AwsSession, inv: &mut EksInventory) -> Result<Progress, AwsError> {
    let ec2 = s.ec2();
    let mut tables = inv.private_route_table_ids.clone();
    if !inv.public_route_table_id.is_empty() {
        tables.push(inv.public_route_table_id.clone());
    }
    for table in tables {
        // Associations left (AWS drops a deleted subnet's; moto keeps them) block the delete.
        let described = ec2
            .describe_route_tables()
            .route_table_ids(&table)
            .send()
            .await
            .map_err(aws_err("ec2:DescribeRouteTables"));
        let associations: Vec<String> = match described {
            Ok(out) => out
                .route_tables()
                .iter()
                .flat_map(|t| t.associations())
                .filter(|a| a.main() != Some(true))
                .filter_map(|a| a.route_table_association_id().map(str::to_string))
                .collect(),
            Err(e) if e.is(&["InvalidRouteTableID.NotFound"]) => Vec::new(),
            Err(e) => return Err(e),
        };
        for association in associations {
            let r = ec2
                .disassociate_route_table()
                .association_id(&association)
                .send()
                .await
                .map_err(aws_err("ec2:DisassociateRouteTable"));
            tolerate(r, &["InvalidAssociationID.NotFound"])?;
        }
        let r = ec2
            .delete_route_table()
            .route_table_id(&table)
            .send()
            .await
            .map_err(aws_err("ec2:DeleteRouteTable"));
        tolerate(r, &["InvalidRouteTableID.NotFound"])?;
        inv.private_route_table_ids.retain(|t| *t != table);
        if inv.public_route_table_id == table {
            inv.public_route_table_id.clear();
        }
    }
    Ok(Progress::Advanced)
}

/// The VPC.
pub async fn vpc(s: &AwsSession, inv: &mut EksInventory) -> Result<Progress, AwsError> {
    let r = s
        .ec2()
        .delete_vpc()
        .vpc_id(&inv.vpc_id)
        .send()
        .await
        .map_err(aws_err("ec2:DeleteVpc"));
    tolerate(r, &["InvalidVpcID.NotFound"])?;
    inv.vpc_id.clear();
    Ok(Progress::Advanced)
}

/// Before a deletion: add to `inv` what a build made but did not record (it was killed, or a
/// call after the create failed, between making a resource and recording it), found the way
/// the build finds its own: the fixed names (cluster, node group, roles, policies under
/// `/<name>/`, the issuer's OIDC provider) and the cluster's tags (VPC, and in it the
/// gateway, subnets, NAT gateways, route tables; the elastic IPs). Without this such a
/// resource would leak, or keep the VPC's deletion failing forever. Fields already recorded
/// are kept.
pub async fn discover(s: &AwsSession, tags: &Tags, inv: &mut EksInventory) -> Result<(), AwsError> {
    discover_cluster(s, tags, inv).await?;
    discover_iam(s, tags, inv).await?;
    discover_network(s, tags, inv).await
}

async fn discover_cluster(
    s: &AwsSession,
    tags: &Tags,
    inv: &mut EksInventory,
) -> Result<(), AwsError> {
    let eks = s.eks();
    let described = eks
        .describe_cluster()
        .name(&tags.name)
        .send()
        .await
        .map_err(aws_err("eks:DescribeCluster"));
    let cluster = match described {
        Ok(out) => out.cluster,
        Err(e) if e.is(&["ResourceNotFoundException"]) => None,
        Err(e) => return Err(e),
    };
    let Some(cluster) = cluster else {
        return Ok(());
    };
    if inv.cluster.cluster_name.is_empty() {
        inv.cluster.cluster_name = tags.name.clone();
        inv.cluster.cluster_arn = cluster.arn().unwrap_or_default().to_string();
    }
    let group = super::cluster::node_group_name(&tags.name);
    if !inv.node_group_names.contains(&group) {
        let found = eks
            .describe_nodegroup()
            .cluster_name(&tags.name)
            .nodegroup_name(&group)
            .send()
            .await
            .map_err(aws_err("eks:DescribeNodegroup"));
        match found {
            Ok(_) => inv.node_group_names.push(group),
            Err(e) if e.is(&["ResourceNotFoundException"]) => {}
            Err(e) => return Err(e),
        }
    }
    let issuer = cluster
        .identity()
        .and_then(|i| i.oidc())
        .and_then(|o| o.issuer())
        .map(|i| i.trim_start_matches("https://").to_string());
    if let (true, Some(issuer)) = (inv.oidc_provider_arn.is_empty(), issuer) {
        let providers = s
            .iam()
            .list_open_id_connect_providers()
            .send()
            .await
            .map_err(aws_err("iam:ListOpenIDConnectProviders"))?;
        if let Some(arn) = providers
            .open_id_connect_provider_list()
            .iter()
            .filter_map(|p| p.arn())
            .find(|arn| arn.ends_with(&issuer))
        {
            inv.oidc_provider_arn = arn.to_string();
        }
    }
    Ok(())
}

async fn discover_iam(s: &AwsSession, tags: &Tags, inv: &mut EksInventory) -> Result<(), AwsError> {
    let iam = s.iam();
    let n = &tags.name;
    for (slot, name) in [
        (&mut inv.cluster_role, format!("cluster-role-{n}")),
        (&mut inv.worker_role, format!("worker-role-{n}")),
        (&mut inv.dns_management_role, format!("dns-mgmt-role-{n}")),
        (&mut inv.dns01_challenge_role, format!("dns-chlg-role-{n}")),
        (
            &mut inv.secrets_manager_role,
            format!("secrets-manager-role-{n}"),
        ),
        (&mut inv.cluster_autoscaling_role, format!("ca-role-{n}")),
        (&mut inv.storage_management_role, format!("csi-role-{n}")),
    ] {
        if !slot.role_name.is_empty() {
            continue;
        }
        match iam
            .get_role()
            .role_name(&name)
            .send()
            .await
            .map_err(aws_err("iam:GetRole"))
        {
            Ok(out) => {
                slot.role_name = name;
                slot.role_arn = out.role().map(|r| r.arn().to_string()).unwrap_or_default();
            }
            Err(e) if e.is(&["NoSuchEntity"]) => {}
            Err(e) => return Err(e),
        }
    }
    let mut pages = iam
        .list_policies()
        .scope(aws_sdk_iam::types::PolicyScopeType::Local)
        .path_prefix(format!("/{n}/"))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws_err("iam:ListPolicies"))?;
        for arn in page.policies().iter().filter_map(|p| p.arn()) {
            if !inv.policy_arns.iter().any(|a| a == arn) {
                inv.policy_arns.push(arn.to_string());
            }
        }
    }
    Ok(())
}

async fn discover_network(
    s: &AwsSession,
    tags: &Tags,
    inv: &mut EksInventory,
) -> Result<(), AwsError> {
    use aws_sdk_ec2::types::Filter;
    let ec2 = s.ec2();
    let tagged = || super::network::tag_filters(&tags.ec2());
    if inv.vpc_id.is_empty() {
        let vpcs = ec2
            .describe_vpcs()
            .set_filters(Some(tagged()))
            .send()
            .await
            .map_err(aws_err("ec2:DescribeVpcs"))?;
        if let [one] = vpcs.vpcs() {
            inv.vpc_id = one.vpc_id().unwrap_or_default().to_string();
        }
    }
    let addresses = ec2
        .describe_addresses()
        .set_filters(Some(tagged()))
        .send()
        .await
        .map_err(aws_err("ec2:DescribeAddresses"))?;
    for id in addresses
        .addresses()
        .iter()
        .filter_map(|a| a.allocation_id())
    {
        if !inv.elastic_ip_ids.iter().any(|e| e == id) {
            inv.elastic_ip_ids.push(id.to_string());
        }
    }
    if inv.vpc_id.is_empty() {
        return Ok(());
    }
    let in_vpc = || Filter::builder().name("vpc-id").values(&inv.vpc_id).build();
    if inv.internet_gateway_id.is_empty() {
        let gateways = ec2
            .describe_internet_gateways()
            .set_filters(Some(tagged()))
            .send()
            .await
            .map_err(aws_err("ec2:DescribeInternetGateways"))?;
        if let Some(id) = gateways
            .internet_gateways()
            .first()
            .and_then(|g| g.internet_gateway_id())
        {
            inv.internet_gateway_id = id.to_string();
        }
    }
    let recorded_subnets: Vec<String> = inv
        .public_subnet_ids()
        .into_iter()
        .chain(inv.private_subnet_ids())
        .collect();
    let subnets = ec2
        .describe_subnets()
        .filters(in_vpc())
        .send()
        .await
        .map_err(aws_err("ec2:DescribeSubnets"))?;
    for subnet in subnets.subnets() {
        let Some(id) = subnet.subnet_id() else {
            continue;
        };
        if !recorded_subnets.iter().any(|r| r == id) {
            inv.availability_zones
                .push(super::inventory::AvailabilityZone {
                    zone: subnet.availability_zone().unwrap_or_default().to_string(),
                    private_subnets: vec![super::inventory::Subnet {
                        subnet_id: id.to_string(),
                        subnet_cidr: subnet.cidr_block().unwrap_or_default().to_string(),
                    }],
                    ..Default::default()
                });
        }
    }
    let nats = ec2
        .describe_nat_gateways()
        .filter(in_vpc())
        .send()
        .await
        .map_err(aws_err("ec2:DescribeNatGateways"))?;
    for nat in nats.nat_gateways() {
        let live = !matches!(
            nat.state(),
            Some(NatGatewayState::Deleted | NatGatewayState::Failed)
        );
        let Some(id) = nat.nat_gateway_id() else {
            continue;
        };
        if live
            && !inv
                .availability_zones
                .iter()
                .any(|z| z.nat_gateway_id == id)
        {
            inv.availability_zones
                .push(super::inventory::AvailabilityZone {
                    nat_gateway_id: id.to_string(),
                    ..Default::default()
                });
        }
    }
    let tables = ec2
        .describe_route_tables()
        .filters(in_vpc())
        .send()
        .await
        .map_err(aws_err("ec2:DescribeRouteTables"))?;
    for table in tables.route_tables() {
        let main = table.associations().iter().any(|a| a.main() == Some(true));
        let Some(id) = table.route_table_id() else {
            continue;
        };
        let recorded =
            inv.public_route_table_id == id || inv.private_route_table_ids.iter().any(|t| t == id);
        if !main && !recorded {
            inv.private_route_table_ids.push(id.to_string());
        }
    }
    Ok(())
}
