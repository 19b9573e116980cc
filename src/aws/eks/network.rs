//! The cluster's network (EC2): zones, VPC, internet gateway, subnets, elastic IPs, NAT
//! gateways and route tables, as aws-builder v0.4.7 makes them. Each function first looks
//! for what an interrupted earlier run made (by the cluster's tags, plus the subnet's CIDR,
//! the address's `ElasticIpRef`, the route table's `…RouteTableRef`), so nothing is made
//! twice; each records an ID in the inventory as soon as the resource exists.

use aws_sdk_ec2::types::{
    AttributeBooleanValue, DomainType, Filter, NatGatewayState, ResourceType, Tag, TagSpecification,
};
use aws_sdk_ec2::Client;

use super::inventory::{AvailabilityZone, EksInventory, Subnet};
use super::plan::{subnet_cidrs, zone_count};
use super::{Progress, Tags};
use crate::aws::error::{aws_err, AwsError};

/// The VPC's address range (aws-builder's `clusterCidr` default).
pub const CLUSTER_CIDR: &str = "10.0.0.0/16";

fn filter(name: &str, value: impl Into<String>) -> Filter {
    Filter::builder().name(name).values(value).build()
}

fn tag(key: &str, value: impl Into<String>) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// Filters matching every one of `tags`.
pub(crate) fn tag_filters(tags: &[(String, String)]) -> Vec<Filter> {
    tags.iter()
        .map(|(k, v)| filter(&format!("tag:{k}"), v.clone()))
        .collect()
}

fn tag_spec(kind: ResourceType, tags: &[(String, String)]) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(tags.iter().map(|(k, v)| tag(k, v.clone())).collect()))
        .build()
}

/// The cluster's tags plus `extra`.
fn with(tags: &Tags, extra: &[(&str, String)]) -> Vec<(String, String)> {
    let mut all = tags.ec2();
    all.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    all
}

fn on() -> AttributeBooleanValue {
    AttributeBooleanValue::builder().value(true).build()
}

/// The first `zone_count` zones of the region, each with its planned subnet CIDRs.
pub async fn zones(
    ec2: &Client,
    region: &str,
    requested: i64,
    inv: &mut EksInventory,
) -> Result<Progress, AwsError> {
    let answer = ec2
        .describe_availability_zones()
        .filters(filter("region-name", region))
        .send()
        .await
        .map_err(aws_err("ec2:DescribeAvailabilityZones"))?;
    let names: Vec<String> = answer
        .availability_zones()
        .iter()
        .filter_map(|z| z.zone_name().map(str::to_string))
        .take(zone_count(requested))
        .collect();
    if names.len() < zone_count(requested) {
        return Err(AwsError::conflict(
            "ec2:DescribeAvailabilityZones",
            format!(
                "region {region} has {} availability zones, the cluster needs {}",
                names.len(),
                zone_count(requested)
            ),
        ));
    }
    inv.region = region.to_string();
    inv.availability_zones = names
        .into_iter()
        .enumerate()
        .map(|(i, zone)| {
            let (public, private) = subnet_cidrs(i);
            AvailabilityZone {
                zone,
                public_subnets: vec![Subnet {
                    subnet_id: String::new(),
                    subnet_cidr: public,
                }],
                private_subnets: vec![Subnet {
                    subnet_id: String::new(),
                    subnet_cidr: private,
                }],
                nat_gateway_id: String::new(),
            }
        })
        .collect();
    Ok(Progress::Advanced)
}

/// The VPC with DNS support and hostnames, tagged for Kubernetes load balancers.
pub async fn vpc(ec2: &Client, tags: &Tags, inv: &mut EksInventory) -> Result<Progress, AwsError> {
    let ours = tags.ec2();
    let found = ec2
        .describe_vpcs()
        .set_filters(Some(tag_filters(&ours)))
        .send()
        .await
        .map_err(aws_err("ec2:DescribeVpcs"))?;
    let vpc_id = match found.vpcs() {
        [] => {
            let all = with(
                tags,
                &[
                    ("kubernetes.io/cluster/cluster-name", tags.name.clone()),
                    (&format!("kubernetes.io/cluster/{}", tags.name), "shared".into()),
                ],
            );
            let made = ec2
                .create_vpc()
                .cidr_block(CLUSTER_CIDR)
                .tag_specifications(tag_spec(ResourceType::Vpc, &all))
                .send()
                .await
                .map_err(aws_err("ec2:CreateVpc"))?;
            made.vpc()
                .and_then(|v| v.vpc_id())
                .ok_or_else(|| AwsError::unexpected("ec2:CreateVpc", "no VPC ID in the answer"))?
                .to_string()
        }
        [one] => one.vpc_id().unwrap_or_default().to_string(),
        many => {
            return Err(AwsError::conflict(
                "ec2:DescribeVpcs",
                format!(
                    "{} VPCs carry the cluster's tags Name={} ProvisionedBy=threeport; remove the extra ones",
                    many.len(),
                    tags.name
                ),
            ))
        }
    };
    for (support, hostnames) in [(Some(on()), None), (None, Some(on()))] {
        ec2.modify_vpc_attribute()
            .vpc_id(&vpc_id)
            .set_enable_dns_support(support)
            .set_enable_dns_hostnames(hostnames)
            .send()
            .await
            .map_err(aws_err("ec2:ModifyVpcAttribute"))?;
    }
    inv.vpc_id = vpc_id;
    Ok(Progress::Advanced)
}

/// The internet gateway, attached to the VPC.
pub async fn internet_gateway(
    ec2: &Client,
    tags: &Tags,
    inv: &mut EksInventory,
) -> Result<Progress, AwsError> {
    let ours = tags.ec2();
    let found = ec2
        .describe_internet_gateways()
        .set_filters(Some(tag_filters(&ours)))
        .send()
        .await
        .map_err(aws_err("ec2:DescribeInternetGateways"))?;
    let igw = match found.internet_gateways().first() {
        Some(g) => g.internet_gateway_id().unwrap_or_default().to_string(),
        None => ec2
            .create_internet_gateway()
            .tag_specifications(tag_spec(ResourceType::InternetGateway, &ours))
            .send()
            .await
            .map_err(aws_err("ec2:CreateInternetGateway"))?
            .internet_gateway()
            .and_then(|g| g.internet_gateway_id())
            .ok_or_else(|| {
                AwsError::unexpected("ec2:CreateInternetGateway", "no gateway ID in the answer")
            })?
            .to_string(),
    };
    match ec2
        .attach_internet_gateway()
        .internet_gateway_id(&igw)
        .vpc_id(&inv.vpc_id)
        .send()
        .await
        .map_err(aws_err("ec2:AttachInternetGateway"))
    {
        Ok(_) => {}
        Err(e) if e.is(&["Resource.AlreadyAssociated"]) => {}
        Err(e) => return Err(e),
    }
    inv.internet_gateway_id = igw;
    Ok(Progress::Advanced)
}

/// The public (`public = true`) or private subnet of every zone.
pub async fn subnets(
    ec2: &Client,
    tags: &Tags,
    public: bool,
    inv: &mut EksInventory,
) -> Result<Progress, AwsError> {
    let role = if public {
        "kubernetes.io/role/elb"
    } else {
        "kubernetes.io/role/internal-elb"
    };
    let all = with(
        tags,
        &[
            (role, "1".into()),
            (
                &format!("kubernetes.io/cluster/{}", tags.name),
                "shared".into(),
            ),
        ],
    );
    let vpc_id = inv.vpc_id.clone();
    for zone in &mut inv.availability_zones {
        let name = zone.zone.clone();
        let subnets = if public {
            &mut zone.public_subnets
        } else {
            &mut zone.private_subnets
        };
        for subnet in subnets.iter_mut().filter(|s| s.subnet_id.is_empty()) {
            let mut filters = tag_filters(&tags.ec2());
            filters.push(filter("cidr-block", subnet.subnet_cidr.clone()));
            filters.push(filter("vpc-id", vpc_id.clone()));
            let found = ec2
                .describe_subnets()
                .set_filters(Some(filters))
                .send()
                .await
                .map_err(aws_err("ec2:DescribeSubnets"))?;
            let id = match found.subnets().first().and_then(|s| s.subnet_id()) {
                Some(id) => id.to_string(),
                None => ec2
                    .create_subnet()
                    .vpc_id(&vpc_id)
                    .availability_zone(&name)
                    .cidr_block(&subnet.subnet_cidr)
                    .tag_specifications(tag_spec(ResourceType::Subnet, &all))
                    .send()
                    .await
                    .map_err(aws_err("ec2:CreateSubnet"))?
                    .subnet()
                    .and_then(|s| s.subnet_id())
                    .ok_or_else(|| {
                        AwsError::unexpected("ec2:CreateSubnet", "no subnet ID in the answer")
                    })?
                    .to_string(),
            };
            if public {
                ec2.modify_subnet_attribute()
                    .subnet_id(&id)
                    .map_public_ip_on_launch(on())
                    .send()
                    .await
                    .map_err(aws_err("ec2:ModifySubnetAttribute"))?;
            }
            subnet.subnet_id = id;
        }
    }
    Ok(Progress::Advanced)
}

/// One elastic IP per zone, tagged `ElasticIpRef=1..n`.
pub async fn elastic_ips(
    ec2: &Client,
    tags: &Tags,
    inv: &mut EksInventory,
) -> Result<Progress, AwsError> {
    for index in inv.elastic_ip_ids.len()..inv.availability_zones.len() {
        let all = with(tags, &[("ElasticIpRef", (index + 1).to_string())]);
        let found = ec2
            .describe_addresses()
            .set_filters(Some(tag_filters(&all)))
            .send()
            .await
            .map_err(aws_err("ec2:DescribeAddresses"))?;
        let id = match found.addresses().first().and_then(|a| a.allocation_id()) {
            Some(id) => id.to_string(),
            None => ec2
                .allocate_address()
                .domain(DomainType::Vpc)
                .tag_specifications(tag_spec(ResourceType::ElasticIp, &all))
                .send()
                .await
                .map_err(aws_err("ec2:AllocateAddress"))?
                .allocation_id()
                .ok_or_else(|| {
                    AwsError::unexpected("ec2:AllocateAddress", "no allocation ID in the answer")
                })?
                .to_string(),
        };
        inv.elastic_ip_ids.push(id);
    }
    Ok(Progress::Advanced)
}

/// One NAT gateway per zone, in its public subnet with its elastic IP. Recorded as soon as
/// requested; [`private_route_tables`] waits for them to be available.
pub async fn nat_gateways(
    ec2: &Client,
    tags: &Tags,
    inv: &mut EksInventory,
) -> Result<Progress, AwsError> {
    let eips = inv.elastic_ip_ids.clone();
    for (zone, eip) in inv.availability_zones.iter_mut().zip(eips) {
        if !zone.nat_gateway_id.is_empty() {
            continue;
        }
        let Some(subnet) = zone.public_subnets.first().map(|s| s.subnet_id.clone()) else {
            continue;
        };
        let found = ec2
            .describe_nat_gateways()
            .filter(filter("subnet-id", subnet.clone()))
            .filter(
                Filter::builder()
                    .name("state")
                    .values("pending")
                    .values("available")
                    .build(),
            )
            .send()
            .await
            .map_err(aws_err("ec2:DescribeNatGateways"))?;
        let id = match found
            .nat_gateways()
            .first()
            .and_then(|n| n.nat_gateway_id())
        {
            Some(id) => id.to_string(),
            None => ec2
                .create_nat_gateway()
                .subnet_id(&subnet)
                .allocation_id(&eip)
                .tag_specifications(tag_spec(ResourceType::Natgateway, &tags.ec2()))
                .send()
                .await
                .map_err(aws_err("ec2:CreateNatGateway"))?
                .nat_gateway()
                .and_then(|n| n.nat_gateway_id())
                .ok_or_else(|| {
                    AwsError::unexpected("ec2:CreateNatGateway", "no NAT gateway ID in the answer")
                })?
                .to_string(),
        };
        zone.nat_gateway_id = id;
    }
    Ok(Progress::Advanced)
}

/// The public subnets' route table, with the default route to the internet gateway.
pub async fn public_route_table(
    ec2: &Client,
    tags: &Tags,
    inv: &mut EksInventory,
) -> Result<Progress, AwsError> {
    let all = with(tags, &[("PublicRouteTableRef", "1".into())]);
    let table = route_table(ec2, &inv.vpc_id, &all).await?;
    add_default_route(ec2, &table, Route::Gateway(&inv.internet_gateway_id)).await?;
    for subnet in inv.public_subnet_ids() {
        associate(ec2, &table, &subnet).await?;
    }
    inv.public_route_table_id = table;
    Ok(Progress::Advanced)
}

/// One route table per private subnet, with the default route to its zone's NAT gateway;
/// waits (by requeue) until the NAT gateways are available. A failed NAT gateway is removed
/// from the inventory (and deleted) so that the next run makes a new one.
pub async fn private_route_tables(
    ec2: &Client,
    tags: &Tags,
    inv: &mut EksInventory,
) -> Result<Progress, AwsError> {
    let nats: Vec<String> = inv
        .availability_zones
        .iter()
        .map(|z| z.nat_gateway_id.clone())
        .collect();
    let described = ec2
        .describe_nat_gateways()
        .set_nat_gateway_ids(Some(nats.clone()))
        .send()
        .await
        .map_err(aws_err("ec2:DescribeNatGateways"));
    let described = match described {
        Ok(d) => d,
        // A failed or deleted gateway is purged after a while: make new ones.
        Err(e) if e.is(&["NatGatewayNotFound", "InvalidNatGatewayID.NotFound"]) => {
            for zone in &mut inv.availability_zones {
                zone.nat_gateway_id.clear();
            }
            return Err(AwsError::unexpected(
                "ec2:DescribeNatGateways",
                "a recorded NAT gateway no longer exists; new ones will be made",
            ));
        }
        Err(e) => return Err(e),
    };
    for nat in described.nat_gateways() {
        match nat.state() {
            Some(NatGatewayState::Available) => {}
            Some(NatGatewayState::Failed | NatGatewayState::Deleted) => {
                let id = nat.nat_gateway_id().unwrap_or_default().to_string();
                let reason = nat
                    .failure_message()
                    .unwrap_or("no reason given")
                    .to_string();
                for zone in &mut inv.availability_zones {
                    if zone.nat_gateway_id == id {
                        zone.nat_gateway_id.clear();
                    }
                }
                let _ = ec2.delete_nat_gateway().nat_gateway_id(&id).send().await;
                return Err(AwsError::unexpected(
                    "ec2:DescribeNatGateways",
                    format!("NAT gateway {id} failed ({reason}); a new one will be made"),
                ));
            }
            _ => return Ok(Progress::Waiting("NAT gateways to be available")),
        }
    }
    let zones = inv.availability_zones.clone();
    for (index, zone) in zones
        .iter()
        .enumerate()
        .skip(inv.private_route_table_ids.len())
    {
        let all = with(tags, &[("PrivateRouteTableRef", (index + 1).to_string())]);
        let table = route_table(ec2, &inv.vpc_id, &all).await?;
        for subnet in zone
            .private_subnets
            .iter()
            .filter(|s| !s.subnet_id.is_empty())
        {
            associate(ec2, &table, &subnet.subnet_id).await?;
        }
        add_default_route(ec2, &table, Route::Nat(&zone.nat_gateway_id)).await?;
        inv.private_route_table_ids.push(table);
    }
    Ok(Progress::Advanced)
}

/// The route table carrying `tags`, made if there is none.
async fn route_table(
    ec2: &Client,
    vpc_id: &str,
    tags: &[(String, String)],
) -> Result<String, AwsError> {
    let mut filters = tag_filters(tags);
    filters.push(filter("vpc-id", vpc_id));
    let found = ec2
        .describe_route_tables()
        .set_filters(Some(filters))
        .send()
        .await
        .map_err(aws_err("ec2:DescribeRouteTables"))?;
    if let Some(id) = found
        .route_tables()
        .first()
        .and_then(|t| t.route_table_id())
    {
        return Ok(id.to_string());
    }
    Ok(ec2
        .create_route_table()
        .vpc_id(vpc_id)
        .tag_specifications(tag_spec(ResourceType::RouteTable, tags))
        .send()
        .await
        .map_err(aws_err("ec2:CreateRouteTable"))?
        .route_table()
        .and_then(|t| t.route_table_id())
        .ok_or_else(|| AwsError::unexpected("ec2:CreateRouteTable", "no route table ID"))?
        .to_string())
}

enum Route<'a> {
    Gateway(&'a str),
    Nat(&'a str),
}

async fn add_default_route(ec2: &Client, table: &str, to: Route<'_>) -> Result<(), AwsError> {
    let request = ec2
        .create_route()
        .route_table_id(table)
        .destination_cidr_block("0.0.0.0/0");
    let request = match to {
        Route::Gateway(id) => request.gateway_id(id),
        Route::Nat(id) => request.nat_gateway_id(id),
    };
    match request.send().await.map_err(aws_err("ec2:CreateRoute")) {
        Ok(_) => Ok(()),
        Err(e) if e.is(&["RouteAlreadyExists"]) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn associate(ec2: &Client, table: &str, subnet: &str) -> Result<(), AwsError> {
    match ec2
        .associate_route_table()
        .route_table_id(table)
        .subnet_id(subnet)
        .send()
        .await
        .map_err(aws_err("ec2:AssociateRouteTable"))
    {
        Ok(_) => Ok(()),
        Err(e) if e.is(&["Resource.AlreadyAssociated"]) => Ok(()),
        Err(e) => Err(e),
    }
}
