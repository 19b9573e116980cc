//! RDS databases as nukleros aws-builder v0.4.7 builds them for Threeport (spec 3.6): a
//! security group `<name>-rds-sg` that lets the EKS cluster's group reach the port, a subnet
//! group `<name>-subnet-group` over the cluster's private subnets, and the DB instance
//! `<name>`, tagged `Name=<name>`, `ProvisionedBy=threeport`. The inventory (aws-builder's
//! `RdsInventory`) records each as it exists; the next step is the first unrecorded one.

use aws_sdk_ec2::types::{Filter, IpPermission, UserIdGroupPair};
use aws_sdk_rds::types::Tag;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::eks::{Progress, Tags};
use super::error::{aws_err, AwsError};
use super::session::AwsSession;

/// `RdsInventory`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RdsInventory {
    /// The region.
    pub region: String,
    /// The DB instance identifier (the instance's Name).
    pub rds_instance_id: String,
    /// The DB's host name, once it is available.
    pub rds_instance_endpoint: String,
    /// `<name>-subnet-group`.
    pub subnet_group_name: String,
    /// The `<name>-rds-sg` group.
    pub security_group_id: String,
    /// Keys of a newer writer, kept.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl super::Inventory for RdsInventory {}

/// The database's shape, from the definition and the cluster it serves.
#[derive(Debug, Clone)]
pub struct RdsSpec {
    /// The cluster's VPC.
    pub vpc_id: String,
    /// The cluster's private subnets.
    pub subnet_ids: Vec<String>,
    /// The cluster's security group: the clients allowed in.
    pub client_security_group_id: String,
    /// `DatabaseName`.
    pub database_name: String,
    /// The RDS class mapped from `MachineSize`.
    pub class: String,
    /// `Engine`.
    pub engine: String,
    /// `EngineVersion`.
    pub engine_version: String,
    /// `DatabasePort`.
    pub port: i32,
    /// `StorageGb`.
    pub storage_gb: i32,
    /// `BackupDays`.
    pub backup_days: i32,
}

/// The next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RdsStep {
    /// The security group and its rules.
    SecurityGroup,
    /// The DB subnet group.
    SubnetGroup,
    /// CreateDBInstance.
    Instance,
    /// Wait until available, then record the endpoint.
    Available,
    /// Built.
    Complete,
}

/// The first unrecorded step.
pub fn next_step(inv: &RdsInventory) -> RdsStep {
    if inv.security_group_id.is_empty() {
        RdsStep::SecurityGroup
    } else if inv.subnet_group_name.is_empty() {
        RdsStep::SubnetGroup
    } else if inv.rds_instance_id.is_empty() {
        RdsStep::Instance
    } else if inv.rds_instance_endpoint.is_empty() {
        RdsStep::Available
    } else {
        RdsStep::Complete
    }
}

/// The RDS class of a Threeport `MachineSize` (Threeport's `mapping/database_machine.go`).
pub fn class_for(machine_size: &str) -> Option<&'static str> {
    Some(match machine_size {
        "XSmall" => "db.t3.micro",
        "Small" => "db.t3.small",
        "Medium" => "db.t3.medium",
        "Large" => "db.m5.large",
        "XLarge" => "db.m5.xlarge",
        "2XLarge" => "db.m5.2xlarge",
        "3XLarge" => "db.m5.4xlarge",
        "4XLarge" => "db.m5.8xlarge",
        _ => return None,
    })
}

fn rds_tags(tags: &Tags) -> Vec<Tag> {
    tags.ec2()
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Run one step. `master`: the user and password for a new DB instance (only used when the
/// instance is made; they are set again when written to the workload's Secret).
pub async fn step(
    s: &AwsSession,
    tags: &Tags,
    spec: &RdsSpec,
    next: RdsStep,
    master: &(String, String),
    inv: &mut RdsInventory,
) -> Result<Progress, AwsError> {
    inv.region = s.region.clone();
    match next {
        RdsStep::SecurityGroup => security_group(s, tags, spec, inv).await,
        RdsStep::SubnetGroup => subnet_group(s, tags, spec, inv).await,
        RdsStep::Instance => instance(s, tags, spec, master, inv).await,
        RdsStep::Available => available(s, inv).await,
        RdsStep::Complete => Ok(Progress::Advanced),
    }
}

async fn security_group(
    s: &AwsSession,
    tags: &Tags,
    spec: &RdsSpec,
    inv: &mut RdsInventory,
) -> Result<Progress, AwsError> {
    let ec2 = s.ec2();
    let name = format!("{}-rds-sg", tags.name);
    let found = ec2
        .describe_security_groups()
        .filters(Filter::builder().name("group-name").values(&name).build())
        .filters(
            Filter::builder()
                .name("vpc-id")
                .values(&spec.vpc_id)
                .build(),
        )
        .send()
        .await
        .map_err(aws_err("ec2:DescribeSecurityGroups"))?;
    let id = match found.security_groups().first().and_then(|g| g.group_id()) {
        Some(id) => id.to_string(),
        None => ec2
            .create_security_group()
            .group_name(&name)
            .description(format!("security group for RDS instance {}", tags.name))
            .vpc_id(&spec.vpc_id)
            .tag_specifications(
                aws_sdk_ec2::types::TagSpecification::builder()
                    .resource_type(aws_sdk_ec2::types::ResourceType::SecurityGroup)
                    .set_tags(Some(
                        tags.ec2()
                            .into_iter()
                            .map(|(k, v)| {
                                aws_sdk_ec2::types::Tag::builder().key(k).value(v).build()
                            })
                            .collect(),
                    ))
                    .build(),
            )
            .send()
            .await
            .map_err(aws_err("ec2:CreateSecurityGroup"))?
            .group_id()
            .ok_or_else(|| AwsError::unexpected("ec2:CreateSecurityGroup", "no group ID"))?
            .to_string(),
    };
    let ingress = ec2
        .authorize_security_group_ingress()
        .group_id(&id)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(spec.port)
                .to_port(spec.port)
                .user_id_group_pairs(
                    UserIdGroupPair::builder()
                        .group_id(&spec.client_security_group_id)
                        .user_id(&s.account_id)
                        .vpc_id(&spec.vpc_id)
                        .description("allow DB clients from local VPC")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .map_err(aws_err("ec2:AuthorizeSecurityGroupIngress"));
    match ingress {
        Ok(_) => {}
        Err(e) if e.is(&["InvalidPermission.Duplicate"]) => {}
        Err(e) => return Err(e),
    }
    inv.security_group_id = id;
    Ok(Progress::Advanced)
}

async fn subnet_group(
    s: &AwsSession,
    tags: &Tags,
    spec: &RdsSpec,
    inv: &mut RdsInventory,
) -> Result<Progress, AwsError> {
    let name = format!("{}-subnet-group", tags.name);
    let made = s
        .rds()
        .create_db_subnet_group()
        .db_subnet_group_name(&name)
        .db_subnet_group_description(format!(
            "database subnet group for RDS instance {}",
            tags.name
        ))
        .set_subnet_ids(Some(spec.subnet_ids.clone()))
        .set_tags(Some(rds_tags(tags)))
        .send()
        .await
        .map_err(aws_err("rds:CreateDBSubnetGroup"));
    match made {
        Ok(_) => {}
        Err(e)
            if e.is(&[
                "DBSubnetGroupAlreadyExists",
                "DBSubnetGroupAlreadyExistsFault",
            ]) => {}
        Err(e) => return Err(e),
    }
    inv.subnet_group_name = name;
    Ok(Progress::Advanced)
}

async fn instance(
    s: &AwsSession,
    tags: &Tags,
    spec: &RdsSpec,
    master: &(String, String),
    inv: &mut RdsInventory,
) -> Result<Progress, AwsError> {
    let made = s
        .rds()
        .create_db_instance()
        .db_instance_identifier(&tags.name)
        .db_name(&spec.database_name)
        .db_instance_class(&spec.class)
        .engine(&spec.engine)
        .engine_version(&spec.engine_version)
        .allocated_storage(spec.storage_gb)
        .backup_retention_period(spec.backup_days)
        .copy_tags_to_snapshot(true)
        .master_username(&master.0)
        .master_user_password(&master.1)
        .monitoring_interval(0)
        .multi_az(false)
        .publicly_accessible(false)
        .port(spec.port)
        .vpc_security_group_ids(&inv.security_group_id)
        .db_subnet_group_name(&inv.subnet_group_name)
        .set_tags(Some(rds_tags(tags)))
        .send()
        .await
        .map_err(aws_err("rds:CreateDBInstance"));
    match made {
        Ok(_) => {}
        Err(e) if e.is(&["DBInstanceAlreadyExists", "DBInstanceAlreadyExistsFault"]) => {
            ensure_ours(s, tags).await?;
        }
        Err(e) => return Err(e),
    }
    inv.rds_instance_id = tags.name.clone();
    Ok(Progress::Advanced)
}

/// A DB instance named as ours is adopted only if it carries our tags (`Name`,
/// `ProvisionedBy=threeport`): someone else's database is never taken over (its password
/// reset, or deleted with the instance).
async fn ensure_ours(s: &AwsSession, tags: &Tags) -> Result<(), AwsError> {
    let described = s
        .rds()
        .describe_db_instances()
        .db_instance_identifier(&tags.name)
        .send()
        .await
        .map_err(aws_err("rds:DescribeDBInstances"))?;
    let found: Vec<(String, String)> = described
        .db_instances()
        .first()
        .map(|d| {
            d.tag_list()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().to_string(),
                        t.value().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if tags.ec2().iter().all(|t| found.contains(t)) {
        Ok(())
    } else {
        Err(AwsError::conflict(
            "rds:CreateDBInstance",
            format!(
                "a DB instance named {} exists without the tags Name={} ProvisionedBy=threeport: \
                 it is not this instance's; rename the instance or remove that database",
                tags.name, tags.name
            ),
        ))
    }
}

async fn available(s: &AwsSession, inv: &mut RdsInventory) -> Result<Progress, AwsError> {
    let described = s
        .rds()
        .describe_db_instances()
        .db_instance_identifier(&inv.rds_instance_id)
        .send()
        .await
        .map_err(aws_err("rds:DescribeDBInstances"))?;
    let Some(db) = described.db_instances().first() else {
        return Err(AwsError::unexpected(
            "rds:DescribeDBInstances",
            "no DB instance in the answer",
        ));
    };
    match db.db_instance_status() {
        Some("available") => {}
        // Creating, backing-up, modifying, resetting-master-credentials ... end by themselves;
        // these need someone.
        Some(
            "failed"
            | "incompatible-parameters"
            | "incompatible-network"
            | "incompatible-option-group"
            | "incompatible-restore"
            | "inaccessible-encryption-credentials"
            | "inaccessible-encryption-credentials-recoverable"
            | "restore-error"
            | "storage-full"
            | "stopped"
            | "stopping"
            | "deleting",
        ) => {
            return Err(AwsError::conflict(
                "rds:DescribeDBInstances",
                format!(
                    "DB instance {} is {}",
                    inv.rds_instance_id,
                    db.db_instance_status().unwrap_or_default()
                ),
            ))
        }
        _ => return Ok(Progress::Waiting("the RDS instance to be available")),
    }
    let endpoint = db
        .endpoint()
        .and_then(|e| e.address())
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            AwsError::unexpected(
                "rds:DescribeDBInstances",
                "the available DB has no endpoint",
            )
        })?;
    inv.rds_instance_endpoint = endpoint.to_string();
    Ok(Progress::Advanced)
}

/// The DB's master user name (for the Secret of a resumed build).
pub async fn master_username(s: &AwsSession, id: &str) -> Result<String, AwsError> {
    let described = s
        .rds()
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .map_err(aws_err("rds:DescribeDBInstances"))?;
    described
        .db_instances()
        .first()
        .and_then(|d| d.master_username())
        .map(str::to_string)
        .ok_or_else(|| AwsError::unexpected("rds:DescribeDBInstances", "no master user name"))
}

/// Set a new master password (applied at once), the one about to be written to the Secret.
pub async fn set_master_password(s: &AwsSession, id: &str, password: &str) -> Result<(), AwsError> {
    s.rds()
        .modify_db_instance()
        .db_instance_identifier(id)
        .master_user_password(password)
        .apply_immediately(true)
        .send()
        .await
        .map_err(aws_err("rds:ModifyDBInstance"))?;
    Ok(())
}

/// Remove the database, its subnet group and its security group, in that order; the DB is
/// waited for (requeue) before the groups it uses go.
pub async fn delete_step(s: &AwsSession, inv: &mut RdsInventory) -> Result<Progress, AwsError> {
    if !inv.rds_instance_id.is_empty() {
        let rds = s.rds();
        let described = rds
            .describe_db_instances()
            .db_instance_identifier(&inv.rds_instance_id)
            .send()
            .await
            .map_err(aws_err("rds:DescribeDBInstances"));
        match described {
            Ok(out) => {
                let deleting = out
                    .db_instances()
                    .first()
                    .and_then(|d| d.db_instance_status())
                    == Some("deleting");
                if !deleting {
                    let r = rds
                        .delete_db_instance()
                        .db_instance_identifier(&inv.rds_instance_id)
                        .skip_final_snapshot(true)
                        .send()
                        .await
                        .map_err(aws_err("rds:DeleteDBInstance"));
                    match r {
                        Ok(_) => {}
                        Err(e) if e.is(&["DBInstanceNotFound", "DBInstanceNotFoundFault"]) => {}
                        Err(e) => return Err(e),
                    }
                }
                return Ok(Progress::Waiting("the RDS instance to be deleted"));
            }
            Err(e) if e.is(&["DBInstanceNotFound", "DBInstanceNotFoundFault"]) => {
                inv.rds_instance_id.clear();
                inv.rds_instance_endpoint.clear();
                return Ok(Progress::Advanced);
            }
            Err(e) => return Err(e),
        }
    }
    if !inv.subnet_group_name.is_empty() {
        let r = s
            .rds()
            .delete_db_subnet_group()
            .db_subnet_group_name(&inv.subnet_group_name)
            .send()
            .await
            .map_err(aws_err("rds:DeleteDBSubnetGroup"));
        match r {
            Ok(_) => {}
            Err(e) if e.is(&["DBSubnetGroupNotFoundFault", "DBSubnetGroupNotFound"]) => {}
            Err(e) => return Err(e),
        }
        inv.subnet_group_name.clear();
        return Ok(Progress::Advanced);
    }
    if !inv.security_group_id.is_empty() {
        let r = s
            .ec2()
            .delete_security_group()
            .group_id(&inv.security_group_id)
            .send()
            .await
            .map_err(aws_err("ec2:DeleteSecurityGroup"));
        match r {
            Ok(_) => {}
            Err(e) if e.is(&["InvalidGroup.NotFound"]) => {}
            Err(e) => return Err(e),
        }
        inv.security_group_id.clear();
    }
    Ok(Progress::Advanced)
}

/// Whether nothing is left to delete.
pub fn deleted(inv: &RdsInventory) -> bool {
    inv.rds_instance_id.is_empty()
        && inv.subnet_group_name.is_empty()
        && inv.security_group_id.is_empty()
}

/// Before a deletion: add what a build made but did not record (by its fixed names; the DB
/// instance only with our tags), so that it is deleted too.
pub async fn discover(s: &AwsSession, tags: &Tags, inv: &mut RdsInventory) -> Result<(), AwsError> {
    if inv.rds_instance_id.is_empty() {
        let found = s
            .rds()
            .describe_db_instances()
            .db_instance_identifier(&tags.name)
            .send()
            .await
            .map_err(aws_err("rds:DescribeDBInstances"));
        match found {
            Ok(_) if ensure_ours(s, tags).await.is_ok() => inv.rds_instance_id = tags.name.clone(),
            Ok(_) => {}
            Err(e) if e.is(&["DBInstanceNotFound", "DBInstanceNotFoundFault"]) => {}
            Err(e) => return Err(e),
        }
    }
    if inv.subnet_group_name.is_empty() {
        let name = format!("{}-subnet-group", tags.name);
        let found = s
            .rds()
            .describe_db_subnet_groups()
            .db_subnet_group_name(&name)
            .send()
            .await
            .map_err(aws_err("rds:DescribeDBSubnetGroups"));
        match found {
            Ok(_) => inv.subnet_group_name = name,
            Err(e) if e.is(&["DBSubnetGroupNotFoundFault", "DBSubnetGroupNotFound"]) => {}
            Err(e) => return Err(e),
        }
    }
    if inv.security_group_id.is_empty() {
        let mut filters = vec![Filter::builder()
            .name("group-name")
            .values(format!("{}-rds-sg", tags.name))
            .build()];
        filters.extend(super::eks::network::tag_filters(&tags.ec2()));
        let found = s
            .ec2()
            .describe_security_groups()
            .set_filters(Some(filters))
            .send()
            .await
            .map_err(aws_err("ec2:DescribeSecurityGroups"))?;
        if let Some(id) = found.security_groups().first().and_then(|g| g.group_id()) {
            inv.security_group_id = id.to_string();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::Inventory;

    #[test]
    fn steps_follow_the_inventory_and_sizes_map_to_classes() {
        let mut inv = RdsInventory::default();
        assert_eq!(next_step(&inv), RdsStep::SecurityGroup);
        inv.security_group_id = "sg".into();
        assert_eq!(next_step(&inv), RdsStep::SubnetGroup);
        inv.subnet_group_name = "g".into();
        assert_eq!(next_step(&inv), RdsStep::Instance);
        inv.rds_instance_id = "db".into();
        assert_eq!(next_step(&inv), RdsStep::Available);
        inv.rds_instance_endpoint = "db.example".into();
        assert_eq!(next_step(&inv), RdsStep::Complete);
        assert!(!deleted(&inv));
        assert_eq!(class_for("XSmall"), Some("db.t3.micro"));
        assert_eq!(class_for("4XLarge"), Some("db.m5.8xlarge"));
        assert_eq!(class_for("Huge"), None);
        let json = inv.to_value();
        for key in [
            "region",
            "rdsInstanceId",
            "rdsInstanceEndpoint",
            "subnetGroupName",
            "securityGroupId",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
    }
}
