//! EKS clusters as nukleros aws-builder v0.4.7 builds them for Threeport (spec 3.6), as a
//! restartable state machine: [`plan`] picks the next step from the recorded inventory,
//! [`step`]/[`delete_step`] run it and record what exists. A step never blocks for AWS: it
//! either advances or says what it waits for, and the reconciler requeues.

pub mod cluster;
pub mod connection;
pub mod delete;
pub mod identity;
pub mod inventory;
pub mod network;
pub mod plan;

use self::inventory::EksInventory;
use self::plan::{CreateStep, DeleteStep};
use super::error::AwsError;
use super::session::AwsSession;

/// The Kubernetes version of new clusters (aws-builder v0.4.7's default).
pub const KUBERNETES_VERSION: &str = "1.31";

/// The tags on everything made for a cluster: `Name=<cluster>` and
/// `ProvisionedBy=threeport`, the way Threeport tags them. They are also how an
/// interrupted run's resources are found again.
#[derive(Debug, Clone)]
pub struct Tags {
    /// The cluster's name (the instance's Name).
    pub name: String,
}

impl Tags {
    /// The tags as key-value pairs, `Name` first.
    pub fn ec2(&self) -> Vec<(String, String)> {
        vec![
            ("Name".to_string(), self.name.clone()),
            ("ProvisionedBy".to_string(), "threeport".to_string()),
        ]
    }
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The step's resource exists and is recorded: go on.
    Advanced,
    /// AWS is still working on it: look again later (the wait, for logs and events).
    Waiting(&'static str),
}

/// The cluster's shape, from the instance and its definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EksSpec {
    /// `ZoneCount` (0 means 2; at most 3).
    pub zone_count: i64,
    /// `DefaultNodeGroupInstanceType`.
    pub instance_type: String,
    /// `DefaultNodeGroupInitialSize`.
    pub initial_nodes: i32,
    /// `DefaultNodeGroupMinimumSize`.
    pub min_nodes: i32,
    /// `DefaultNodeGroupMaximumSize`.
    pub max_nodes: i32,
    /// The cluster's Kubernetes version.
    pub kubernetes_version: String,
}

/// Run one provisioning step against AWS, recording what it made in `inv`.
pub async fn step(
    session: &AwsSession,
    tags: &Tags,
    spec: &EksSpec,
    next: CreateStep,
    inv: &mut EksInventory,
) -> Result<Progress, AwsError> {
    let ec2 = session.ec2();
    let iam = session.iam();
    let eks = session.eks();
    match next {
        CreateStep::Zones => network::zones(&ec2, &session.region, spec.zone_count, inv).await,
        CreateStep::Vpc => network::vpc(&ec2, tags, inv).await,
        CreateStep::InternetGateway => network::internet_gateway(&ec2, tags, inv).await,
        CreateStep::PublicSubnets => network::subnets(&ec2, tags, true, inv).await,
        CreateStep::PrivateSubnets => network::subnets(&ec2, tags, false, inv).await,
        CreateStep::ElasticIps => network::elastic_ips(&ec2, tags, inv).await,
        CreateStep::NatGateways => network::nat_gateways(&ec2, tags, inv).await,
        CreateStep::PublicRouteTable => network::public_route_table(&ec2, tags, inv).await,
        CreateStep::PrivateRouteTables => network::private_route_tables(&ec2, tags, inv).await,
        CreateStep::ClusterRole => identity::cluster_role(&iam, tags, inv).await,
        CreateStep::WorkerRole => identity::worker_role(&iam, tags, inv).await,
        CreateStep::Cluster => cluster::cluster(&eks, tags, spec, inv).await,
        CreateStep::ClusterActive => cluster::cluster_active(&eks, tags, inv).await,
        CreateStep::SecurityGroup => cluster::security_group(&eks, &ec2, tags, inv).await,
        CreateStep::NodeGroup => cluster::node_group(&eks, tags, spec, inv).await,
        CreateStep::OidcProvider => {
            if !cluster::node_groups_active(&eks, tags, inv).await? {
                return Ok(Progress::Waiting("the node group to be active"));
            }
            identity::oidc_provider(&iam, inv).await
        }
        CreateStep::ServiceRole(role) => {
            identity::service_role(&iam, tags, &session.account_id, role, inv).await
        }
        CreateStep::StorageAddon => cluster::storage_addon(&eks, tags, inv).await,
        CreateStep::Complete => Ok(Progress::Advanced),
    }
}

/// Run one deletion step against AWS, clearing what it removed from `inv`.
pub async fn delete_step(
    session: &AwsSession,
    tags: &Tags,
    next: DeleteStep,
    inv: &mut EksInventory,
) -> Result<Progress, AwsError> {
    match next {
        DeleteStep::OidcProvider => delete::oidc_provider(session, inv).await,
        DeleteStep::NodeGroups => delete::node_groups(session, tags, inv).await,
        DeleteStep::Cluster => delete::cluster(session, tags, inv).await,
        DeleteStep::Roles => delete::roles(session, inv).await,
        DeleteStep::Policies => delete::policies(session, inv).await,
        DeleteStep::NatGateways => delete::nat_gateways(session, inv).await,
        DeleteStep::InternetGateway => delete::internet_gateway(session, inv).await,
        DeleteStep::ElasticIps => delete::elastic_ips(session, inv).await,
        DeleteStep::Subnets => delete::subnets(session, inv).await,
        DeleteStep::RouteTables => delete::route_tables(session, inv).await,
        DeleteStep::Vpc => delete::vpc(session, inv).await,
        DeleteStep::Complete => Ok(Progress::Advanced),
    }
}
